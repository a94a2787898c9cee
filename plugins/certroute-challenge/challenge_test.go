package certroute_challenge

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// responder records what reached it and answers with the token it was asked for.
func responder(t *testing.T) (*httptest.Server, *[]*http.Request) {
	t.Helper()
	var seen []*http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Clone(context.Background()))
		_, _ = io.WriteString(w, "key-auth:"+strings.TrimPrefix(r.URL.Path, ChallengePrefix))
	}))
	t.Cleanup(srv.Close)
	return srv, &seen
}

var nextHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusTeapot)
	_, _ = io.WriteString(w, "next")
})

func newMiddleware(t *testing.T, url string) http.Handler {
	t.Helper()
	config := CreateConfig()
	config.Responder = url
	h, err := New(context.Background(), nextHandler, config, "challenge")
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return h
}

func TestChallengeRequestsGoToTheResponderWithTheirHostHeader(t *testing.T) {
	srv, seen := responder(t)
	h := newMiddleware(t, srv.URL)

	req := httptest.NewRequest(http.MethodGet, "http://app.example.test/.well-known/acme-challenge/tok123", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)

	if rec.Code != http.StatusOK || rec.Body.String() != "key-auth:tok123" {
		t.Fatalf("got %d %q, want 200 from the responder", rec.Code, rec.Body.String())
	}
	if len(*seen) != 1 {
		t.Fatalf("responder saw %d requests, want 1", len(*seen))
	}
	got := (*seen)[0]
	if got.Host != "app.example.test" {
		t.Errorf("responder saw Host %q, want the challenged host app.example.test", got.Host)
	}
	if got.URL.Path != "/.well-known/acme-challenge/tok123" {
		t.Errorf("responder saw path %q", got.URL.Path)
	}
}

func TestOtherRequestsGoToTheNextHandler(t *testing.T) {
	srv, seen := responder(t)
	h := newMiddleware(t, srv.URL)

	for _, path := range []string{"/", "/.well-known/acme-challenge", "/.well-known/other", "/x/.well-known/acme-challenge/tok"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://app.example.test"+path, nil))
		if rec.Code != http.StatusTeapot || rec.Body.String() != "next" {
			t.Errorf("%s: got %d %q, want the next handler", path, rec.Code, rec.Body.String())
		}
	}
	if len(*seen) != 0 {
		t.Errorf("responder saw %d requests, want none", len(*seen))
	}
}

func TestAnUnreachableResponderIsABadGatewayThatRevealsNothing(t *testing.T) {
	srv, _ := responder(t)
	url := srv.URL
	srv.Close()
	h := newMiddleware(t, url)

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://app.example.test/.well-known/acme-challenge/tok", nil))
	if rec.Code != http.StatusBadGateway {
		t.Fatalf("got %d, want 502", rec.Code)
	}
	if strings.Contains(rec.Body.String(), "127.0.0.1") {
		t.Errorf("body %q reveals the responder address", rec.Body.String())
	}
}

func TestAMissingOrMalformedResponderFailsAtLoadTime(t *testing.T) {
	for _, responder := range []string{"", "certroute-responder:8089", "ftp://x", "http://"} {
		config := CreateConfig()
		config.Responder = responder
		if _, err := New(context.Background(), nextHandler, config, "challenge"); err == nil {
			t.Errorf("responder %q: New succeeded, want an error", responder)
		}
	}
}
