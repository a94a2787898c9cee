// Package certroute_challenge is a Traefik middleware that sends ACME HTTP-01 challenge requests
// to certroute's responder. Attached at entrypoint level, it answers challenges before any
// router, redirect or catch-all route sees them, so a web→websecure redirect cannot get in the
// way. Traefik runs it in Yaegi, so it uses the standard library only.
package certroute_challenge

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"time"
)

// ChallengePrefix is the path every HTTP-01 validation request starts with (RFC 8555 §8.3).
const ChallengePrefix = "/.well-known/acme-challenge/"

// Config is the middleware's dynamic configuration.
type Config struct {
	// Responder is the base URL of certroute's responder, e.g.
	// http://certroute-responder.certroute.svc:8089.
	Responder string `json:"responder,omitempty"`
}

// CreateConfig returns the default configuration, as Traefik's plugin loader requires.
func CreateConfig() *Config {
	return &Config{}
}

type challenge struct {
	next  http.Handler
	proxy *httputil.ReverseProxy
}

// New builds the middleware. It fails at load time on a missing or malformed responder URL, so
// a typo shows in Traefik's log at once instead of as failed validations later.
func New(_ context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	if config == nil || config.Responder == "" {
		return nil, fmt.Errorf("%s: responder is required, e.g. http://certroute-responder.certroute.svc:8089", name)
	}
	target, err := url.Parse(config.Responder)
	if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		return nil, fmt.Errorf("%s: responder %q is not an http(s) URL with a host", name, config.Responder)
	}

	dialer := &net.Dialer{Timeout: 5 * time.Second}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			// The responder answers only when the token and the Host both match a challenge, and
			// needs nothing else: no other header, no query and no body of the client's reaches it.
			r.Out.Host = r.In.Host
			r.Out.Header = http.Header{}
			r.Out.URL.RawQuery = ""
			r.Out.Body = http.NoBody
			r.Out.ContentLength = 0
		},
		// Never through an HTTP(S)_PROXY from Traefik's environment: the responder is in-cluster.
		Transport: &http.Transport{
			Proxy: nil,
			// A closure, not the method value dialer.DialContext, which Yaegi cannot convert.
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, addr)
			},
			ResponseHeaderTimeout: 10 * time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   4,
		},
		ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) {
			// Traefik logs a plugin's stderr as errors; the client learns nothing about the inside.
			// Host and path are the client's: quoted, so they cannot forge a log line.
			fmt.Fprintf(os.Stderr, "%s: proxying host %q path %q to the responder %s failed: %v\n", name, req.Host, req.URL.Path, config.Responder, err)
			http.Error(w, "ACME challenge responder unavailable", http.StatusBadGateway)
		},
	}
	return &challenge{next: next, proxy: proxy}, nil
}

func (c *challenge) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if strings.HasPrefix(req.URL.Path, ChallengePrefix) {
		// A validator only ever GETs a token (HEAD for a probe); nothing else is passed on.
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		c.proxy.ServeHTTP(w, req)
		return
	}
	c.next.ServeHTTP(w, req)
}
