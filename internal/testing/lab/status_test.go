package lab

import "testing"

func TestProxyTroubleMatchesUncleanEndsOnly(t *testing.T) {
	for line, want := range map[string]bool{
		"198.18.2.1:33313 [06/Dec/2026:12:12:51.443] svc-http svc-http/s3 1/0/5007 0 SC 1/1/0/0/3 0/0":                      true,
		"198.18.2.1:33313 [06/Dec/2026:12:12:51.443] svc-http svc-http/s3 1/-1/200 0 sC 1/1/0/0/3 0/0":                      true,
		"198.18.2.1:33313 [06/Dec/2026:12:12:51.443] svc-http svc-http/s3 1/0/5 212 -- 1/1/0/0/0 0/0":                       false,
		`198.18.2.1:33313 [06/Dec/2026:12:12:51.443] web web/s1 0/0/0/1/1 200 212 - - ---- 1/1/0/0/0 0/0 "GET / HTTP/1.1"`:  false,
		`198.18.2.1:33313 [06/Dec/2026:12:12:51.443] web web/s1 0/0/0/-1/1 503 212 - - SC-- 1/1/0/0/3 0/0 "GET / HTTP/1.1"`: true,
		`198.18.2.1:33313 [06/Dec/2026:12:12:51.443] web web/s1 0/0/0/1/1 200 212 - - --NI 1/1/0/0/0 0/0 "GET / HTTP/1.1"`:  false,
	} {
		if got := proxyTrouble.MatchString(line); got != want {
			t.Errorf("%q: %v, want %v", line, got, want)
		}
	}
}

func TestSplitImage(t *testing.T) {
	for ref, want := range map[string][3]string{
		"localhost/hakeeper/manager:5f3a9c":        {"localhost/hakeeper/manager", "5f3a9c", ""},
		"registry.lab:5000/hakeeper/manager":       {"registry.lab:5000/hakeeper/manager", "", ""},
		"registry.lab:5000/hk/dataplane:123":       {"registry.lab:5000/hk/dataplane", "123", ""},
		"hakeeper":                                 {"hakeeper", "", ""},
		"registry.lab:5000/hk/dataplane@sha256:ab": {"registry.lab:5000/hk/dataplane", "", "sha256:ab"},
		"hk/dataplane:1.2@sha256:ab":               {"hk/dataplane", "1.2", "sha256:ab"},
	} {
		if r, tag, digest := splitImage(ref); r != want[0] || tag != want[1] || digest != want[2] {
			t.Errorf("splitImage(%q) = %q, %q, %q; want %q", ref, r, tag, digest, want)
		}
	}
}
