package console_test

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/orderledger/orderledger/console"
)

// apiStub stands for the API: it requires a token, as the real one does
// when the server has one.
const token = "s3cret-console-token"

var apiStub = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+token {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.WriteHeader(http.StatusTeapot)
})

func get(t *testing.T, h http.Handler, method, target string, hdr http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestServesEmbeddedFiles(t *testing.T) {
	t.Parallel()
	h := console.Mount(apiStub)
	for _, tc := range []struct {
		path, ctype, contains string
	}{
		{"/console/", "text/html; charset=utf-8", `<script src="app.js" defer></script>`},
		{"/console/index.html", "text/html; charset=utf-8", "<title>orderledger console</title>"},
		{"/console/app.js", "text/javascript; charset=utf-8", "'use strict';"},
		{"/console/console.css", "text/css; charset=utf-8", ":root"},
	} {
		res := get(t, h, http.MethodGet, tc.path, nil)
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d; want 200", tc.path, res.StatusCode)
		}
		if got := res.Header.Get("Content-Type"); got != tc.ctype {
			t.Errorf("GET %s: Content-Type %q; want %q", tc.path, got, tc.ctype)
		}
		if !strings.Contains(string(body), tc.contains) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.contains)
		}
		for k, want := range map[string]string{
			"X-Content-Type-Options": "nosniff",
			"Referrer-Policy":        "no-referrer",
			"Cache-Control":          "no-cache",
		} {
			if got := res.Header.Get(k); got != want {
				t.Errorf("GET %s: %s %q; want %q", tc.path, k, got, want)
			}
		}
		csp := res.Header.Get("Content-Security-Policy")
		for _, d := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, d) {
				t.Errorf("GET %s: Content-Security-Policy %q lacks %q", tc.path, csp, d)
			}
		}
		// A conditional GET with the ETag is a 304 without a body.
		etag := res.Header.Get("ETag")
		if etag == "" {
			t.Errorf("GET %s: no ETag", tc.path)
			continue
		}
		res = get(t, h, http.MethodGet, tc.path, http.Header{"If-None-Match": {etag}})
		if b, _ := io.ReadAll(res.Body); res.StatusCode != http.StatusNotModified || len(b) != 0 {
			t.Errorf("GET %s If-None-Match %s: %d with %d bytes; want 304, empty", tc.path, etag, res.StatusCode, len(b))
		}
		// HEAD: the headers, no body.
		res = get(t, h, http.MethodHead, tc.path, nil)
		if b, _ := io.ReadAll(res.Body); res.StatusCode != http.StatusOK || len(b) != 0 || res.Header.Get("Content-Type") != tc.ctype {
			t.Errorf("HEAD %s: %d, %d bytes, %q; want 200, empty, %q", tc.path, res.StatusCode, len(b), res.Header.Get("Content-Type"), tc.ctype)
		}
	}
}

// The console's files are public: they are served without the token the
// API requires, and every other path still goes to the API.
func TestMountPassesTheRestToTheAPI(t *testing.T) {
	t.Parallel()
	h := console.Mount(apiStub)
	if res := get(t, h, http.MethodGet, "/console/", nil); res.StatusCode != http.StatusOK {
		t.Errorf("GET /console/ without a token: %d; want 200", res.StatusCode)
	}
	for _, p := range []string{"/orders", "/consoles", "/console.js", "/feed", "/"} {
		if res := get(t, h, http.MethodGet, p, nil); res.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without a token: %d; want the API's 401", p, res.StatusCode)
		}
		if res := get(t, h, http.MethodGet, p, http.Header{"Authorization": {"Bearer " + token}}); res.StatusCode != http.StatusTeapot {
			t.Errorf("GET %s with the token: %d; want the API's answer", p, res.StatusCode)
		}
	}
	res := get(t, h, http.MethodGet, "/console", nil)
	if res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "/console/" {
		t.Errorf("GET /console: %d to %q; want 301 to /console/", res.StatusCode, res.Header.Get("Location"))
	}
}

func TestNotFoundAndMethods(t *testing.T) {
	t.Parallel()
	h := console.Mount(apiStub)
	for _, p := range []string{"/console/nope.js", "/console/static/app.js", "/console/../go.mod", "/console/app.js/", "/console/%2e%2e/console.go", "/console/sub/"} {
		res := get(t, h, http.MethodGet, p, nil)
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d; want 404", p, res.StatusCode)
			continue
		}
		var prob struct {
			Status int    `json:"status"`
			Title  string `json:"title"`
		}
		if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" || json.Unmarshal(body, &prob) != nil || prob.Status != 404 {
			t.Errorf("GET %s: %q %s; want a 404 problem+json", p, ct, body)
		}
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		res := get(t, h, m, "/console/", nil)
		if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s /console/: %d Allow %q; want 405 Allow GET, HEAD", m, res.StatusCode, res.Header.Get("Allow"))
		}
	}
}

// The token never travels in a URL: the page sends it only as an
// Authorization header, keeps it in sessionStorage (not localStorage, not a
// cookie), and builds no URL from it. These are properties of the source;
// tests/console checks the requests a real browser sends.
func TestTokenStaysOutOfURLs(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	js := string(src)
	for _, bad := range []string{"localStorage", "document.cookie", "?token", "&token", "access_token", "EventSource("} {
		if strings.Contains(js, bad) {
			t.Errorf("app.js uses %q", bad)
		}
	}
	uses := regexp.MustCompile(`token\(\)`).FindAllStringIndex(js, -1)
	if len(uses) == 0 {
		t.Fatal("app.js never reads the token")
	}
	for _, u := range uses {
		line := js[strings.LastIndex(js[:u[0]], "\n")+1 : u[1]+strings.Index(js[u[1]:], "\n")]
		if !strings.Contains(line, "Authorization") && !strings.Contains(line, "if (token())") && !strings.Contains(line, "!token()") &&
			!strings.Contains(line, "function token()") {
			t.Errorf("app.js uses the token outside an Authorization header: %s", strings.TrimSpace(line))
		}
	}
	if !strings.Contains(js, "sessionStorage.setItem(TOKEN_KEY") {
		t.Error("app.js does not keep the token in sessionStorage")
	}
}

// Every embedded file has a content type, and the page loads nothing from
// another origin.
func TestNoThirdPartyOrigins(t *testing.T) {
	t.Parallel()
	abs := regexp.MustCompile(`(?i)(src|href)\s*=\s*["'](https?:)?//`)
	err := fs.WalkDir(os.DirFS("static"), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path.Join("static", p))
		if err != nil {
			return err
		}
		if m := abs.Find(b); m != nil {
			t.Errorf("%s loads from another origin: %s", p, m)
		}
		res := get(t, console.Handler(), http.MethodGet, console.Prefix+p, nil)
		if res.StatusCode != http.StatusOK {
			t.Errorf("embedded %s: %d", p, res.StatusCode)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
