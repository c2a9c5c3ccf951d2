package redis

import (
	"context"
	"crypto/sha1"
	"encoding/hex"

	"github.com/redis/rueidis"
)

// script is a Lua script run by its SHA-1 (EVALSHA), sent whole (EVAL) only to a server that
// does not know it yet. Unlike rueidis.Lua.ExecMulti, a batch costs one round trip when the
// server knows the script.
type script struct {
	src string
	sha string
}

// call is one run of a script: its keys and arguments.
type call struct {
	keys []string
	args []string
}

func newScript(src string) *script {
	sum := sha1.Sum([]byte(src))
	return &script{src: src, sha: hex.EncodeToString(sum[:])}
}

// run runs the script once.
func (s *script) run(ctx context.Context, c rueidis.Client, keys, args []string) rueidis.RedisResult {
	res := c.Do(ctx, c.B().Evalsha().Sha1(s.sha).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build())
	if err, ok := rueidis.IsRedisErr(res.Error()); ok && err.IsNoScript() {
		res = c.Do(ctx, c.B().Eval().Script(s.src).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build())
	}
	return res
}

// runAll runs the script once per call, all calls sent together, and returns their results
// in order. Calls the server refused for not knowing the script are sent again whole.
func (s *script) runAll(ctx context.Context, c rueidis.Client, calls []call) []rueidis.RedisResult {
	cmds := make(rueidis.Commands, len(calls))
	for i, cl := range calls {
		cmds[i] = c.B().Evalsha().Sha1(s.sha).Numkeys(int64(len(cl.keys))).Key(cl.keys...).Arg(cl.args...).Build()
	}
	res := c.DoMulti(ctx, cmds...)
	var unknown []int
	for i, r := range res {
		if err, ok := rueidis.IsRedisErr(r.Error()); ok && err.IsNoScript() {
			unknown = append(unknown, i)
		}
	}
	if len(unknown) == 0 {
		return res
	}
	cmds = make(rueidis.Commands, len(unknown))
	for j, i := range unknown {
		cl := calls[i]
		cmds[j] = c.B().Eval().Script(s.src).Numkeys(int64(len(cl.keys))).Key(cl.keys...).Arg(cl.args...).Build()
	}
	for j, r := range c.DoMulti(ctx, cmds...) {
		res[unknown[j]] = r
	}
	return res
}
