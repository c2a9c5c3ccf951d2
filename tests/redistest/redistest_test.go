package redistest

import (
	"fmt"
	"regexp"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestURL(t *testing.T) {
	t.Setenv("PLM_TEST_REDIS_URL", "")
	assert.Equal(t, "redis://127.0.0.1:6379/0", URL())
	t.Setenv("PLM_TEST_REDIS_URL", "redis://cache:6380/2")
	assert.Equal(t, "redis://cache:6380/2", URL())
}

func TestIntegrationPrefixDeletesItsKeysOnly(t *testing.T) {
	url := Require(t)
	c := Connect(t, url)
	other := Prefix(t, url)
	var prefix string
	t.Run("test", func(t *testing.T) {
		prefix = Prefix(t, url)
		assert.Regexp(t, regexp.MustCompile(`^plmtest-[0-9a-f]{12}$`), prefix)
		assert.NotEqual(t, other, prefix)
		for i := range 2500 { // more than one SCAN batch
			require.NoError(t, c.Do(t.Context(), c.B().Set().Key(fmt.Sprintf("%s:k:%d", prefix, i)).Value("v").Build()).Error())
		}
		require.NoError(t, c.Do(t.Context(), c.B().Set().Key(other+":kept").Value("v").Build()).Error())
	})
	var left []string
	require.NoError(t, scan(t.Context(), c, prefix, func(keys []string) error {
		left = append(left, keys...)
		return nil
	}))
	assert.Empty(t, left, "the keys of the prefix are deleted when its test ends")
	n, err := c.Do(t.Context(), c.B().Exists().Key(other+":kept").Build()).AsInt64()
	require.NoError(t, err)
	assert.EqualValues(t, 1, n, "the keys of another prefix stay")
}

// recorder is a testing.TB that records Skipf and Fatalf, which end its goroutine as the
// real ones do, without ending the test.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls fn with r in a goroutine of its own and waits for it to end.
func (r *recorder) run(fn func(testing.TB)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(r)
	}()
	<-done
}

func TestRequireWithoutServer(t *testing.T) {
	t.Setenv("PLM_TEST_REDIS_URL", "redis://127.0.0.1:1/0") // nothing listens on port 1
	tests := []struct {
		name        string
		require     string
		wantSkipped bool
	}{
		{"skips_loudly", "", true},
		{"fails_when_services_are_required", "1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PLM_REQUIRE_SERVICES", tt.require)
			r := &recorder{TB: t}
			returned := false
			r.run(func(tb testing.TB) {
				Require(tb)
				returned = true
			})
			assert.False(t, returned, "Require ends the test")
			if tt.wantSkipped {
				assert.Empty(t, r.failed)
				assert.Contains(t, r.skipped, "SKIPPED: Redis does not answer at redis://127.0.0.1:1/0")
				assert.Contains(t, r.skipped, "set PLM_REQUIRE_SERVICES=1 to make this a failure")
			} else {
				assert.Empty(t, r.skipped)
				assert.Contains(t, r.failed, "redis://127.0.0.1:1/0")
			}
		})
	}
}
