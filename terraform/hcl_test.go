// Package terraform_test checks the Terraform configuration offline: the
// modules agree with the code (package resources) on every name and setting,
// follow the project's rules, and validate against the AWS provider schema.
// Nothing here needs Terraform, a provider download or AWS.
package terraform_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// moduleDirs are the directories of Terraform configuration, relative to this
// package: every module and the dev environment.
var moduleDirs = []string{
	"modules/networking",
	"modules/eventstore",
	"modules/messaging",
	"modules/lambda",
	"modules/container",
	"modules/api_gateway",
	"modules/github_oidc",
	"environments/dev",
}

// module is one directory of parsed .tf files.
type module struct {
	dir   string
	files map[string]*hcl.File // by file name
	names []string             // file names, sorted
}

// parseModule parses every .tf file of dir.
func parseModule(dir string) (*module, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%s: no .tf files", dir)
	}
	sort.Strings(paths)
	m := &module{dir: dir, files: map[string]*hcl.File{}}
	p := hclparse.NewParser()
	for _, path := range paths {
		f, diags := p.ParseHCLFile(path)
		if diags.HasErrors() {
			return nil, fmt.Errorf("%s: %s", path, diags.Error())
		}
		name := filepath.Base(path)
		m.files[name] = f
		m.names = append(m.names, name)
	}
	return m, nil
}

// parseSource parses one configuration given as text (for the checks' own tests).
func parseSource(name, src string) (*module, error) {
	f, diags := hclparse.NewParser().ParseHCL([]byte(src), name)
	if diags.HasErrors() {
		return nil, fmt.Errorf("%s: %s", name, diags.Error())
	}
	return &module{dir: ".", files: map[string]*hcl.File{name: f}, names: []string{name}}, nil
}

func mustParseModule(t *testing.T, dir string) *module {
	t.Helper()
	m, err := parseModule(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// blocks returns the top-level blocks of type typ whose leading labels are labels.
func (m *module) blocks(typ string, labels ...string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, name := range m.names {
		body := m.files[name].Body.(*hclsyntax.Body)
		for _, b := range body.Blocks {
			if b.Type != typ || len(b.Labels) < len(labels) {
				continue
			}
			match := true
			for i, l := range labels {
				if b.Labels[i] != l {
					match = false
				}
			}
			if match {
				out = append(out, b)
			}
		}
	}
	return out
}

// resource returns the resource block typ.name, failing the test when it is missing.
func (m *module) resource(t *testing.T, typ, name string) *hclsyntax.Block {
	t.Helper()
	bs := m.blocks("resource", typ, name)
	if len(bs) != 1 {
		t.Fatalf("%s: want exactly one resource %s.%s, found %d", m.dir, typ, name, len(bs))
	}
	return bs[0]
}

// source returns the text of expr as written.
func (m *module) source(expr hcl.Expression) string {
	r := expr.Range()
	f, ok := m.files[filepath.Base(r.Filename)]
	if !ok {
		return ""
	}
	return string(r.SliceBytes(f.Bytes))
}

// child returns the nested blocks of b of type typ.
func child(b *hclsyntax.Block, typ string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, c := range b.Body.Blocks {
		if c.Type == typ {
			out = append(out, c)
		}
	}
	return out
}

// evaluator evaluates expressions of one module the way Terraform would for a
// plan, with every value that only exists after apply (resource attributes,
// data sources, module outputs) unknown.
type evaluator struct {
	vars   map[string]cty.Value
	locals map[string]cty.Value
}

// newEvaluator evaluates m's variables (defaults, replaced by inputs) and locals.
func newEvaluator(m *module, inputs map[string]cty.Value) (*evaluator, error) {
	e := &evaluator{vars: map[string]cty.Value{}, locals: map[string]cty.Value{}}
	for _, v := range m.blocks("variable") {
		name := v.Labels[0]
		if in, ok := inputs[name]; ok {
			e.vars[name] = in
			continue
		}
		e.vars[name] = cty.DynamicVal
		if def, ok := v.Body.Attributes["default"]; ok {
			val, diags := def.Expr.Value(nil)
			if diags.HasErrors() {
				return nil, fmt.Errorf("%s: variable %s: default: %s", m.dir, name, diags.Error())
			}
			e.vars[name] = val
		}
	}
	for name := range inputs {
		if _, ok := e.vars[name]; !ok {
			return nil, fmt.Errorf("%s: input %q is not a variable of the module", m.dir, name)
		}
	}
	var pending []*hclsyntax.Attribute
	for _, l := range m.blocks("locals") {
		for _, a := range l.Body.Attributes {
			pending = append(pending, a)
		}
	}
	// Locals may refer to each other in any order: evaluate until no more progress.
	for len(pending) > 0 {
		var next []*hclsyntax.Attribute
		for _, a := range pending {
			v, diags := e.eval(a.Expr, nil)
			if diags.HasErrors() {
				next = append(next, a)
				continue
			}
			e.locals[a.Name] = v
		}
		if len(next) == len(pending) {
			for _, a := range next {
				e.locals[a.Name] = cty.DynamicVal
			}
			break
		}
		pending = next
	}
	return e, nil
}

// functions are the Terraform functions the checks can evaluate; any other
// function used by an expression evaluates to an unknown value.
var functions = map[string]function.Function{
	"concat":     stdlib.ConcatFunc,
	"contains":   stdlib.ContainsFunc,
	"format":     stdlib.FormatFunc,
	"join":       stdlib.JoinFunc,
	"jsonencode": stdlib.JSONEncodeFunc,
	"keys":       stdlib.KeysFunc,
	"length":     stdlib.LengthFunc,
	"lookup":     stdlib.LookupFunc,
	"max":        stdlib.MaxFunc,
	"merge":      stdlib.MergeFunc,
	"min":        stdlib.MinFunc,
	"slice":      stdlib.SliceFunc,
	"sort":       stdlib.SortFunc,
	"tolist":     stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
	"tonumber":   stdlib.MakeToFunc(cty.Number),
	"toset":      stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)),
	"tostring":   stdlib.MakeToFunc(cty.String),
	"values":     stdlib.ValuesFunc,
}

var unknownFunc = function.New(&function.Spec{
	VarParam: &function.Parameter{Name: "args", Type: cty.DynamicPseudoType, AllowNull: true, AllowUnknown: true, AllowDynamicType: true},
	Type:     function.StaticReturnType(cty.DynamicPseudoType),
	Impl: func([]cty.Value, cty.Type) (cty.Value, error) {
		return cty.DynamicVal, nil
	},
})

// eval evaluates expr; extra adds variables such as each or count.
func (e *evaluator) eval(expr hcl.Expression, extra map[string]cty.Value) (cty.Value, hcl.Diagnostics) {
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{
			"var":   cty.ObjectVal(e.vars),
			"local": cty.ObjectVal(e.locals),
			"path": cty.ObjectVal(map[string]cty.Value{
				"module": cty.StringVal("."), "root": cty.StringVal("."), "cwd": cty.StringVal("."),
			}),
		},
		Functions: map[string]function.Function{},
	}
	for k, v := range extra {
		ctx.Variables[k] = v
	}
	for _, tr := range expr.Variables() {
		if _, ok := ctx.Variables[tr.RootName()]; !ok {
			ctx.Variables[tr.RootName()] = cty.DynamicVal
		}
	}
	for name, f := range functions {
		ctx.Functions[name] = f
	}
	if n, ok := expr.(hclsyntax.Node); ok {
		_ = hclsyntax.VisitAll(n, func(n hclsyntax.Node) hcl.Diagnostics {
			if call, ok := n.(*hclsyntax.FunctionCallExpr); ok {
				if _, known := ctx.Functions[call.Name]; !known {
					ctx.Functions[call.Name] = unknownFunc
				}
			}
			return nil
		})
	}
	return expr.Value(ctx)
}

// attr evaluates attribute name of body, failing the test when it is missing
// or does not evaluate.
func (e *evaluator) attr(t *testing.T, b *hclsyntax.Block, name string, extra map[string]cty.Value) cty.Value {
	t.Helper()
	a, ok := b.Body.Attributes[name]
	if !ok {
		t.Fatalf("%s: %s %s: attribute %s is missing", b.DefRange().Filename, b.Type, strings.Join(b.Labels, "."), name)
	}
	v, diags := e.eval(a.Expr, extra)
	if diags.HasErrors() {
		t.Fatalf("%s: %s: %s", b.DefRange().Filename, name, diags.Error())
	}
	return v
}

// jsonArg evaluates the argument of a jsonencode(...) expression, so that a
// policy whose ARNs are unknown until apply still shows its known parts.
func (e *evaluator) jsonArg(expr hcl.Expression, extra map[string]cty.Value) (cty.Value, bool) {
	call, ok := expr.(*hclsyntax.FunctionCallExpr)
	if !ok || call.Name != "jsonencode" || len(call.Args) != 1 {
		return cty.NilVal, false
	}
	v, diags := e.eval(call.Args[0], extra)
	if diags.HasErrors() {
		return cty.NilVal, false
	}
	return v, true
}

// moduleInputs evaluates the arguments of a module call in the caller's evaluator.
func (e *evaluator) moduleInputs(call *hclsyntax.Block) (map[string]cty.Value, error) {
	in := map[string]cty.Value{}
	for name, a := range call.Body.Attributes {
		switch name {
		case "source", "version", "count", "for_each", "depends_on", "providers":
			continue
		}
		v, diags := e.eval(a.Expr, nil)
		if diags.HasErrors() {
			return nil, fmt.Errorf("module %s: %s: %s", call.Labels[0], name, diags.Error())
		}
		in[name] = v
	}
	return in, nil
}

// references reports whether expr refers to the given address (for example
// "aws_sqs_queue.dlq" or "var.deletion_protection").
func references(expr hcl.Expression, addr string) bool {
	parts := strings.Split(addr, ".")
	for _, tr := range expr.Variables() {
		if tr.RootName() != parts[0] || len(tr) < len(parts) {
			continue
		}
		match := true
		for i, p := range parts[1:] {
			a, ok := tr[i+1].(hcl.TraverseAttr)
			if !ok || a.Name != p {
				match = false
			}
		}
		if match {
			return true
		}
	}
	return false
}

// strings converts a known list, set or tuple of strings.
func stringList(v cty.Value) ([]string, bool) {
	if !v.IsWhollyKnown() || v.IsNull() || !v.CanIterateElements() {
		return nil, false
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, el := it.Element()
		if el.Type() != cty.String {
			return nil, false
		}
		out = append(out, el.AsString())
	}
	return out, true
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
