package redis

import (
	"crypto/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/production-line-monitor/plm/tests/redistest"
)

func TestIntegrationScriptUnknownToTheServerIsSentWhole(t *testing.T) {
	c := redistest.Connect(t, redistest.Require(t))
	// A script no server has seen: its first runs are refused by SHA-1, then sent whole.
	fresh := func() *script { return newScript("-- " + rand.Text() + "\nreturn KEYS[1] .. '=' .. ARGV[1]") }

	got, err := fresh().run(t.Context(), c, []string{"k"}, []string{"v"}).ToString()
	require.NoError(t, err)
	assert.Equal(t, "k=v", got)

	s := fresh()
	for range 2 { // unknown, then known
		res := s.runAll(t.Context(), c, []call{
			{keys: []string{"a"}, args: []string{"1"}},
			{keys: []string{"b"}, args: []string{"2"}},
			{keys: []string{"c"}, args: []string{"3"}},
		})
		require.Len(t, res, 3)
		for i, want := range []string{"a=1", "b=2", "c=3"} {
			got, err := res[i].ToString()
			require.NoError(t, err)
			assert.Equal(t, want, got)
		}
	}
}
