// Command echo is the lab's workload: an HTTP server that answers who it
// is and who it sees, so that a test through a load balancer can tell
// which pod answered and whether the client's address reached it.
//
//	GET /healthz  -> ok
//	GET /anything -> pod=<POD_NAME> client=<address> path=/anything
//
// With --proxy-protocol every connection must open with a PROXY protocol
// v2 header (HAProxy's send-proxy-v2), and the client is the one the
// header names; a connection without one is closed. A health check that
// only connects and closes is fine either way.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("listen", ":8080", "address to serve on")
	proxyProtocol := flag.Bool("proxy-protocol", false, "expect a PROXY protocol v2 header on every connection")
	flag.Parse()
	name := os.Getenv("POD_NAME")
	if name == "" {
		name, _ = os.Hostname()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "pod=%s client=%s path=%s\n", name, r.RemoteAddr, r.URL.Path)
	})
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	if *proxyProtocol {
		l = proxyListener{l}
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	// As PID 1 the program gets SIGTERM when its pod goes: finish the
	// requests in flight, then exit.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// proxyListener hands out connections that read their PROXY header on
// first use, in the connection's own goroutine, so a slow or silent
// client never holds up Accept.
type proxyListener struct{ net.Listener }

func (l proxyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &proxyConn{Conn: c}, nil
}

type proxyConn struct {
	net.Conn
	once   sync.Once
	reader *bufio.Reader
	source net.Addr
	err    error
}

// v2Signature opens every PROXY protocol v2 header.
var v2Signature = []byte("\r\n\r\n\x00\r\nQUIT\n")

func (c *proxyConn) header() error {
	c.once.Do(func() {
		c.reader = bufio.NewReader(c.Conn)
		_ = c.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		defer func() { _ = c.Conn.SetReadDeadline(time.Time{}) }()
		c.source, c.err = readV2(c.reader)
		if c.err != nil {
			log.Printf("closing %s: %v", c.Conn.RemoteAddr(), c.err)
			_ = c.Conn.Close()
		}
	})
	return c.err
}

func (c *proxyConn) Read(b []byte) (int, error) {
	if err := c.header(); err != nil {
		return 0, err
	}
	return c.reader.Read(b)
}

func (c *proxyConn) RemoteAddr() net.Addr {
	if c.header() == nil && c.source != nil {
		return c.source
	}
	return c.Conn.RemoteAddr()
}

// readV2 reads a PROXY protocol v2 header and returns the source it
// names: nil for a LOCAL command (HAProxy's own health checks).
func readV2(r *bufio.Reader) (net.Addr, error) {
	fixed := make([]byte, 16)
	if _, err := io.ReadFull(r, fixed); err != nil {
		return nil, fmt.Errorf("no PROXY header: %w", err)
	}
	if !bytes.Equal(fixed[:12], v2Signature) || fixed[12]>>4 != 2 {
		return nil, errors.New("no PROXY protocol v2 header")
	}
	rest := make([]byte, binary.BigEndian.Uint16(fixed[14:16]))
	if _, err := io.ReadFull(r, rest); err != nil {
		return nil, fmt.Errorf("short PROXY header: %w", err)
	}
	if fixed[12]&0x0f == 0 { // LOCAL
		return nil, nil
	}
	var src netip.Addr
	var port uint16
	switch fixed[13] >> 4 {
	case 1: // IPv4: source, destination, source port, destination port
		if len(rest) < 12 {
			return nil, errors.New("short IPv4 PROXY addresses")
		}
		src, _ = netip.AddrFromSlice(rest[:4])
		port = binary.BigEndian.Uint16(rest[8:10])
	case 2: // IPv6
		if len(rest) < 36 {
			return nil, errors.New("short IPv6 PROXY addresses")
		}
		src, _ = netip.AddrFromSlice(rest[:16])
		port = binary.BigEndian.Uint16(rest[32:34])
	default:
		return nil, nil // UNSPEC: no address to report
	}
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, port)), nil
}
