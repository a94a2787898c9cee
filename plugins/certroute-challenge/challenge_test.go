package certroute_challenge

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
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

func TestOnlyGetAndHeadAreForwardedAndOnlyWithTheirHost(t *testing.T) {
	srv, seen := responder(t)
	h := newMiddleware(t, srv.URL)

	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions, "PROPFIND"} {
		req := httptest.NewRequest(method, "http://app.example.test/.well-known/acme-challenge/tok", strings.NewReader("payload"))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: got %d (Allow %q), want 405 with Allow: GET, HEAD", method, rec.Code, rec.Header().Get("Allow"))
		}
	}
	if len(*seen) != 0 {
		t.Fatalf("the responder saw %d requests for other methods, want none", len(*seen))
	}

	req := httptest.NewRequest(http.MethodGet, "http://app.example.test/.well-known/acme-challenge/tok?x=1&admin=true", strings.NewReader("body"))
	req.Header.Set("Authorization", "Bearer secret")
	req.Header.Set("Cookie", "session=abc")
	req.Header.Set("X-Forwarded-For", "10.0.0.1")
	h.ServeHTTP(httptest.NewRecorder(), req)
	req = httptest.NewRequest(http.MethodHead, "http://app.example.test/.well-known/acme-challenge/tok", nil)
	h.ServeHTTP(httptest.NewRecorder(), req)
	if len(*seen) != 2 {
		t.Fatalf("the responder saw %d requests, want the GET and the HEAD", len(*seen))
	}
	got := (*seen)[0]
	if got.Host != "app.example.test" || got.URL.RawQuery != "" {
		t.Errorf("responder saw Host %q and query %q, want the host and no query", got.Host, got.URL.RawQuery)
	}
	for _, name := range []string{"Authorization", "Cookie", "X-Forwarded-For"} {
		if got.Header.Get(name) != "" {
			t.Errorf("the client's %s header reached the responder", name)
		}
	}
	if got.ContentLength > 0 {
		t.Errorf("a body of %d bytes reached the responder", got.ContentLength)
	}
	if (*seen)[1].Method != http.MethodHead {
		t.Errorf("the second request was %s, want HEAD", (*seen)[1].Method)
	}
}

func TestAPathWithANewlineCannotForgeALogLine(t *testing.T) {
	srv, _ := responder(t)
	url := srv.URL
	srv.Close()
	h := newMiddleware(t, url)

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = w
	req := httptest.NewRequest(http.MethodGet, "http://app.example.test/.well-known/acme-challenge/tok%0Alevel=error%20msg=forged", nil)
	h.ServeHTTP(httptest.NewRecorder(), req)
	os.Stderr = stderr
	_ = w.Close()
	logged, _ := io.ReadAll(r)

	lines := strings.Split(strings.TrimRight(string(logged), "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("one failed request logged %d lines: %q", len(lines), logged)
	}
	if !strings.Contains(lines[0], `"/.well-known/acme-challenge/tok\nlevel=error msg=forged"`) {
		t.Errorf("the path is not quoted in %q", lines[0])
	}
}
