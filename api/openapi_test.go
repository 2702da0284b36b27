package api_test

import (
	"encoding/json"
	"fmt"
	"math"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/orderledger/orderledger/api"
)

// This file checks real responses against the OpenAPI document with a small
// JSON Schema validator. It implements exactly the keywords the document
// uses and fails on any other, so the document cannot drift into keywords
// the check would silently ignore.

type openAPIDoc struct {
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas    map[string]any             `json:"schemas"`
		Responses  map[string]json.RawMessage `json:"responses"`
		Headers    map[string]json.RawMessage `json:"headers"`
		Parameters map[string]json.RawMessage `json:"parameters"`
	} `json:"components"`
}

type operationDoc struct {
	Responses map[string]json.RawMessage `json:"responses"`
}

type responseDoc struct {
	Ref     string                          `json:"$ref"`
	Content map[string]struct{ Schema any } `json:"content"`
	Headers map[string]json.RawMessage      `json:"headers"`
}

func loadDoc(t testing.TB) *openAPIDoc {
	t.Helper()
	var d openAPIDoc
	if err := json.Unmarshal(api.OpenAPI, &d); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return &d
}

// operation finds the documented operation for method and path (trailing
// slash optional, HEAD documented as GET).
func (d *openAPIDoc) operation(method, path string) (tmpl string, op *operationDoc, ok bool) {
	if method == http.MethodHead {
		method = http.MethodGet
	}
	if len(path) > 1 {
		path = strings.TrimSuffix(path, "/")
	}
	segs := strings.Split(path, "/")
	for p, item := range d.Paths {
		ps := strings.Split(p, "/")
		if len(ps) != len(segs) {
			continue
		}
		match := true
		for i := range ps {
			if !strings.HasPrefix(ps[i], "{") && ps[i] != segs[i] {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		raw, has := item[strings.ToLower(method)]
		if !has {
			return p, nil, true
		}
		var o operationDoc
		if err := json.Unmarshal(raw, &o); err != nil {
			panic(err)
		}
		return p, &o, true
	}
	return "", nil, false
}

// checkResponse validates one real response against the document.
func (d *openAPIDoc) checkResponse(method, path string, status int, header http.Header, body []byte) error {
	tmpl, op, ok := d.operation(method, path)
	if !ok {
		if status == http.StatusNotFound {
			return d.checkProblem(header, body) // an undocumented path: a 404 problem
		}
		return fmt.Errorf("%s %s: path not in the document", method, path)
	}
	if op == nil {
		if status == http.StatusMethodNotAllowed {
			return d.checkProblem(header, body)
		}
		return fmt.Errorf("%s %s: method not documented for %s", method, path, tmpl)
	}
	raw, ok := op.Responses[fmt.Sprint(status)]
	if !ok {
		return fmt.Errorf("%s %s: status %d not documented", method, tmpl, status)
	}
	var rd responseDoc
	_ = json.Unmarshal(raw, &rd)
	if rd.Ref != "" {
		_ = json.Unmarshal(d.Components.Responses[strings.TrimPrefix(rd.Ref, "#/components/responses/")], &rd)
	}
	for name := range rd.Headers {
		if header.Get(name) == "" {
			return fmt.Errorf("%s %s %d: documented header %s missing", method, tmpl, status, name)
		}
	}
	if len(rd.Content) == 0 {
		return nil
	}
	mt, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
	media, ok := rd.Content[mt]
	if !ok {
		return fmt.Errorf("%s %s %d: content type %q not documented", method, tmpl, status, mt)
	}
	if method == http.MethodHead {
		return nil
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("%s %s %d: body is not JSON: %v", method, tmpl, status, err)
	}
	if err := d.validate(media.Schema, v, "$"); err != nil {
		return fmt.Errorf("%s %s %d: %v\nbody: %s", method, tmpl, status, err, body)
	}
	return nil
}

func (d *openAPIDoc) checkProblem(header http.Header, body []byte) error {
	if ct := header.Get("Content-Type"); ct != "application/problem+json" {
		return fmt.Errorf("problem content type %q", ct)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return err
	}
	return d.validate(map[string]any{"$ref": "#/components/schemas/Problem"}, v, "$")
}

var knownKeywords = map[string]bool{
	"$ref": true, "type": true, "properties": true, "required": true, "additionalProperties": true,
	"items": true, "enum": true, "const": true, "format": true, "pattern": true, "minimum": true,
	"maximum": true, "minLength": true, "maxLength": true, "description": true,
}

// validate checks v (decoded JSON) against schema.
func (d *openAPIDoc) validate(schema any, v any, at string) error {
	s, ok := schema.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: schema is not an object", at)
	}
	for k := range s {
		if !knownKeywords[k] {
			return fmt.Errorf("%s: schema keyword %q is not supported by the test validator", at, k)
		}
	}
	if ref, ok := s["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		target, ok := d.Components.Schemas[name]
		if !ok {
			return fmt.Errorf("%s: unresolved $ref %s", at, ref)
		}
		return d.validate(target, v, at)
	}
	if t, ok := s["type"]; ok {
		var types []string
		switch t := t.(type) {
		case string:
			types = []string{t}
		case []any:
			for _, x := range t {
				types = append(types, x.(string))
			}
		}
		if !slices.ContainsFunc(types, func(t string) bool { return hasType(v, t) }) {
			return fmt.Errorf("%s: %v is not of type %v", at, v, types)
		}
	}
	if c, ok := s["const"]; ok && fmt.Sprint(c) != fmt.Sprint(v) {
		return fmt.Errorf("%s: %v is not %v", at, v, c)
	}
	if e, ok := s["enum"].([]any); ok && !slices.ContainsFunc(e, func(x any) bool { return fmt.Sprint(x) == fmt.Sprint(v) }) {
		return fmt.Errorf("%s: %v is not one of %v", at, v, e)
	}
	switch v := v.(type) {
	case string:
		n := float64(len([]rune(v)))
		if m, ok := s["minLength"].(float64); ok && n < m {
			return fmt.Errorf("%s: %q shorter than %v", at, v, m)
		}
		if m, ok := s["maxLength"].(float64); ok && n > m {
			return fmt.Errorf("%s: %q longer than %v", at, v, m)
		}
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(v) {
			return fmt.Errorf("%s: %q does not match %s", at, v, p)
		}
		if f, ok := s["format"].(string); ok && f == "date-time" {
			if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
				return fmt.Errorf("%s: %q is not a date-time", at, v)
			}
		}
	case float64:
		if m, ok := s["minimum"].(float64); ok && v < m {
			return fmt.Errorf("%s: %v below %v", at, v, m)
		}
		if m, ok := s["maximum"].(float64); ok && v > m {
			return fmt.Errorf("%s: %v above %v", at, v, m)
		}
	case []any:
		if items, ok := s["items"]; ok {
			for i, x := range v {
				if err := d.validate(items, x, fmt.Sprintf("%s[%d]", at, i)); err != nil {
					return err
				}
			}
		}
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if _, has := v[r.(string)]; !has {
					return fmt.Errorf("%s: required property %q missing", at, r)
				}
			}
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if ps, ok := props[k]; ok {
				if err := d.validate(ps, v[k], at+"."+k); err != nil {
					return err
				}
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					return fmt.Errorf("%s: property %q not allowed", at, k)
				}
			case map[string]any:
				if err := d.validate(ap, v[k], at+"."+k); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func hasType(v any, t string) bool {
	switch t {
	case "null":
		return v == nil
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "number":
		_, ok := v.(float64)
		return ok
	case "integer":
		f, ok := v.(float64)
		return ok && f == math.Trunc(f)
	case "array":
		_, ok := v.([]any)
		return ok
	case "object":
		_, ok := v.(map[string]any)
		return ok
	}
	return false
}

// TestOpenAPIValidatorRejects proves the validator can fail: each body
// breaks the Order schema in one way.
func TestOpenAPIValidatorRejects(t *testing.T) {
	t.Parallel()
	d := loadDoc(t)
	good := `{"order_id":"01KAW5Y8Z9ABCDEFGHJKMNPQRS","customer_name":"a","product_name":"b","quantity":1,"status":"Pending","version":1,"created_at":"2026-11-25T13:00:00Z","updated_at":"2026-11-25T13:00:00Z","failure_reason":"","payment_id":"","reservation_id":"","amount":0}`
	order := map[string]any{"$ref": "#/components/schemas/Order"}
	var v any
	_ = json.Unmarshal([]byte(good), &v)
	if err := d.validate(order, v, "$"); err != nil {
		t.Fatalf("valid order rejected: %v", err)
	}
	bad := map[string]string{
		"missing field":  strings.Replace(good, `"quantity":1,`, ``, 1),
		"wrong type":     strings.Replace(good, `"quantity":1`, `"quantity":"1"`, 1),
		"not an integer": strings.Replace(good, `"quantity":1`, `"quantity":1.5`, 1),
		"bad enum":       strings.Replace(good, `"Pending"`, `"Shipped"`, 1),
		"extra field":    strings.Replace(good, `{`, `{"secret":1,`, 1),
		"bad ULID":       strings.Replace(good, `01KAW5Y8Z9ABCDEFGHJKMNPQRS`, `not-a-ulid`, 1),
		"bad time":       strings.Replace(good, `"2026-11-25T13:00:00Z",`, `"yesterday",`, 1),
		"below minimum":  strings.Replace(good, `"version":1`, `"version":0`, 1),
	}
	for name, body := range bad {
		var v any
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := d.validate(order, v, "$"); err == nil {
			t.Errorf("%s: accepted %s", name, body)
		}
	}
}

// TestOpenAPIDocumentsEveryRoute walks the router: every route is a
// documented path and method, and every documented operation is routed.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	t.Parallel()
	d := loadDoc(t)
	h := api.NewRouter(api.Deps{Store: newMemStore(), Views: newMemViews(), Codec: testCodec})
	routed := map[string]bool{}
	err := chi.Walk(h.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		key := method + " " + route
		routed[key] = true
		if _, op, ok := d.operation(method, route); !ok || op == nil {
			t.Errorf("route %s is not documented", key)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for p, item := range d.Paths {
		for m := range item {
			if m == "parameters" {
				continue
			}
			if key := strings.ToUpper(m) + " " + p; !routed[key] {
				t.Errorf("documented operation %s is not routed", key)
			}
		}
	}
}
