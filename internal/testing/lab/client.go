package lab

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Client sends requests from the client namespace.
type Client struct {
	http *http.Client
}

// NewClient returns a client whose connections start in the client
// namespace. Every request opens a new connection, as a new user would.
func (l *Lab) NewClient(timeout time.Duration) *Client {
	return &Client{http: &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:       dialer(l.net.ns("client")),
			DisableKeepAlives: true,
		},
	}}
}

// Get fetches a URL with an optional Host header and returns the body.
func (c *Client) Get(ctx context.Context, rawURL, host string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return "", err
	}
	if host != "" {
		req.Host = host
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("status %d", resp.StatusCode)
	}
	return string(body), nil
}

// Backend names the backend that answered ("backend=NAME path=...").
func Backend(body string) string {
	name, _, _ := strings.Cut(strings.TrimPrefix(body, "backend="), " ")
	return name
}

// Probe requests a URL every interval until stopped, recording the longest
// run of failures: the outage a user saw.
type Probe struct {
	stop chan struct{}
	done chan struct{}

	mu         sync.Mutex
	ok, failed int
	streak     int // successes since the last failure
	outage     time.Duration
	errors     []string // the first few distinct errors
	outages    []Outage // every run of failures
}

// Outage is one run of failed requests.
type Outage struct {
	Start    time.Time
	Duration time.Duration
}

func (o Outage) String() string {
	return fmt.Sprintf("%.3fs at %s", o.Duration.Seconds(), o.Start.Format("15:04:05.000"))
}

// Outages lists every run of failures, in order.
func (p *Probe) Outages() []Outage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Outage(nil), p.outages...)
}

// Errors are the first distinct errors the probe saw, to tell a refused
// connection from a timeout.
func (p *Probe) Errors() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.errors...)
}

func (p *Probe) noteError(err error) {
	msg := err.Error()
	if len(p.errors) < 5 && !slices.Contains(p.errors, msg) {
		p.errors = append(p.errors, msg)
	}
}

// Streak is how many requests in a row have succeeded.
func (p *Probe) Streak() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.streak
}

// StartProbe starts probing url; at most maxDuration and so at most
// maxDuration/interval requests.
func (c *Client) StartProbe(url string, interval, maxDuration time.Duration) *Probe {
	p := &Probe{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		deadline := time.Now().Add(maxDuration)
		var failingSince time.Time
		for time.Now().Before(deadline) {
			start := time.Now()
			_, err := c.Get(context.Background(), url, "")
			p.mu.Lock()
			if err != nil {
				p.failed++
				p.streak = 0
				p.noteError(err)
				if failingSince.IsZero() {
					failingSince = start
				}
			} else {
				p.ok++
				p.streak++
				if !failingSince.IsZero() {
					o := Outage{Start: failingSince, Duration: time.Since(failingSince)}
					p.outages = append(p.outages, o)
					p.outage = max(p.outage, o.Duration)
					failingSince = time.Time{}
				}
			}
			p.mu.Unlock()
			select {
			case <-p.stop:
				return
			case <-time.After(max(0, interval-time.Since(start))):
			}
		}
	}()
	return p
}

// Stop ends the probe and returns the longest outage and the counts.
func (p *Probe) Stop() (outage time.Duration, ok, failed int) {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.outage, p.ok, p.failed
}

// NewProbeClient is a client with the short timeout probes use: a request
// that takes longer than 200 ms counts as failed.
func NewProbeClient(l *Lab) *Client { return l.NewClient(200 * time.Millisecond) }

// NewKeepAliveClient reuses connections, as browsers and proxies in front of
// a load balancer do; reloads must not break them either.
func (l *Lab) NewKeepAliveClient(timeout time.Duration) *Client {
	return &Client{http: &http.Client{
		Timeout:   timeout,
		Transport: &http.Transport{DialContext: dialer(l.net.ns("client")), MaxIdleConnsPerHost: 4},
	}}
}

// Transport opens every connection in the client namespace.
func Transport(l *Lab) *http.Transport {
	return &http.Transport{DialContext: dialer(l.net.ns("client")), DisableKeepAlives: true}
}

// Scrape fetches url from the client namespace, as a Prometheus outside
// the cluster would, with a bearer token (none if empty). Certificates are
// not verified: the agents' are self-signed, as controller-runtime makes
// them. It returns the status code and the body.
func (l *Lab) Scrape(ctx context.Context, url, token string) (int, string, error) {
	tr := scrapeTransport()
	tr.DialContext = dialer(l.net.ns("client"))
	return scrape(ctx, tr, url, token)
}

// ScrapeLocal is Scrape from the host: for a port kubectl port-forward
// opened on loopback.
func ScrapeLocal(ctx context.Context, url, token string) (int, string, error) {
	return scrape(ctx, scrapeTransport(), url, token)
}

func scrapeTransport() *http.Transport {
	return &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // self-signed by design
	}
}

func scrape(ctx context.Context, tr *http.Transport, url, token string) (int, string, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: tr}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, string(body), err
}
