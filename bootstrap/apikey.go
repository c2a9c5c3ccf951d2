package bootstrap

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// APIKeyFile is the file in the data directory that keeps the generated API key.
const APIKeyFile = "api-key"

// EnsureAPIKeys returns cfg with API keys. When PLM_API_KEYS set none, the key kept in the
// data directory is used, and on the very first start one is generated, saved (mode 0600)
// and printed once to out. The service never runs without a key.
func EnsureAPIKeys(cfg Config, out io.Writer) (Config, error) {
	if len(cfg.APIKeys) > 0 {
		return cfg, nil
	}
	path := filepath.Join(cfg.DataDir, APIKeyFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		key := strings.TrimSpace(string(b))
		if len(key) < 16 {
			return cfg, fmt.Errorf("read api key: %s holds no valid key; delete it to generate a new one", path)
		}
		cfg.APIKeys = []string{key}
		fmt.Fprintf(out, "Using the API key kept in %s (set PLM_API_KEYS to use your own).\n", path)
		return cfg, nil
	case !errors.Is(err, fs.ErrNotExist):
		return cfg, fmt.Errorf("read api key: %w", err)
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return cfg, fmt.Errorf("generate api key: %w", err)
	}
	key := "plm_" + hex.EncodeToString(raw)
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return cfg, fmt.Errorf("create data dir: %w", err)
	}
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return cfg, fmt.Errorf("save api key: %w", err)
	}
	cfg.APIKeys = []string{key}
	fmt.Fprintf(out, "\nNo PLM_API_KEYS set: generated an API key and saved it in %s.\n"+
		"Send it with every request as the X-API-Key header:\n\n    %s\n\n", path, key)
	return cfg, nil
}
