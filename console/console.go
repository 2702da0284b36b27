// Package console is the ledger's operator console: a single-page web
// application (plain HTML, CSS and JavaScript, no build step, no third-party
// code) embedded in the binary and served under /console/ next to the API.
//
// What it owns: the files under static/ and the handler that serves them.
// The pages call the same API any client does (orders, events, cancel,
// /admin/dlq, /admin/projections/rebuild, /readyz, /metrics, /feed); the
// console adds no route of the API and no privilege.
//
// Guarantees:
//   - The files are served from the binary (go:embed): no CDN, no network
//     access at run time, the same files on every backend.
//   - Only GET and HEAD are answered (405 otherwise); a name that is not one
//     of the embedded files is a 404 problem+json; /console redirects to
//     /console/. Content types are set from the file's extension, never
//     sniffed (X-Content-Type-Options: nosniff).
//   - Every answer carries a Content-Security-Policy that allows scripts,
//     styles and connections to this origin only, and no framing.
//   - The console's files are public (they hold no data and no secret);
//     the API calls they make need the token when the server has one. The
//     page asks for it once, keeps it in the tab's sessionStorage and sends
//     it only as an Authorization header, never in a URL, so it is not in
//     access logs, history or Referer headers.
//
// Caveat: the live table follows GET /feed through fetch and a stream
// reader rather than EventSource, because EventSource cannot send an
// Authorization header; where /feed answers 501 (the AWS backend) the page
// polls the listing instead and says so. A feed event is committed to the
// log before the projector applies it to the read model the listing reads,
// so the table re-reads until the order's row shows the event's version,
// reloads shortly after the feed opens (it starts at the head) and every
// 10 s while live: the table trails the log by the projector's lag, never
// by an event missed for good.
package console

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// Prefix is the path the console is served under.
const Prefix = "/console/"

//go:embed static
var static embed.FS

// contentTypes maps the extensions of the embedded files to their types.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".txt":  "text/plain; charset=utf-8",
}

// csp is the Content-Security-Policy of every answer.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

type file struct {
	body  []byte
	ctype string
	etag  string
}

// Handler serves the console's files: Prefix is index.html, Prefix+name
// the embedded file name.
func Handler() http.Handler {
	files := map[string]file{}
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic("console: " + err.Error())
	}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			panic("console: no content type for embedded file " + p)
		}
		sum := sha256.Sum256(b)
		files[p] = file{body: b, ctype: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic("console: " + err.Error())
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			problem(w, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed here")
			return
		}
		if r.URL.Path == strings.TrimSuffix(Prefix, "/") {
			http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
			return
		}
		name := strings.TrimPrefix(r.URL.Path, Prefix)
		if name == "" {
			name = "index.html"
		}
		f, ok := files[name]
		if !ok || !strings.HasPrefix(r.URL.Path, Prefix) {
			problem(w, http.StatusNotFound, "no such console file: "+r.URL.Path)
			return
		}
		h.Set("Content-Type", f.ctype)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", f.etag)
		if inm := r.Header.Get("If-None-Match"); inm != "" && inm == f.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(f.body)
		}
	})
}

// Mount returns a handler that serves the console under Prefix (and
// redirects the bare /console) and passes every other request to next.
func Mount(next http.Handler) http.Handler {
	c := Handler()
	bare := strings.TrimSuffix(Prefix, "/")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == bare || strings.HasPrefix(r.URL.Path, Prefix) {
			c.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// problem writes an RFC 9457 problem, as the API does.
func problem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}{"about:blank", http.StatusText(status), status, detail})
}
