package contract

import (
	"crypto/sha256"
	"encoding/hex"
)

// NodeConfigHash is the hash of what one node runs: haproxy.cfg and its
// keepalived.conf. Agents report it; status compares it to find drift.
func NodeConfigHash(haproxyCfg, keepalivedConf []byte) string {
	h := sha256.New()
	h.Write(haproxyCfg)
	h.Write([]byte{0})
	h.Write(keepalivedConf)
	return hex.EncodeToString(h.Sum(nil))[:16]
}
