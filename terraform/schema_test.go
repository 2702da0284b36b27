package terraform_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	tfjson "github.com/hashicorp/terraform-json"
)

// schemaPath is the AWS provider schema, read where it is kept next to the
// project (../shared/data/terraform/ from the repository root).
var schemaPath = filepath.Join("..", "..", "shared", "data", "terraform", "aws-provider-6.47.0-schema.json")

const awsProvider = "registry.terraform.io/hashicorp/aws"

var (
	schemaOnce sync.Once
	schema     *tfjson.ProviderSchema
	schemaErr  error
)

// awsSchema loads the provider schema once. It skips the test when the file is
// absent, and fails it when CI=true.
func awsSchema(t *testing.T) *tfjson.ProviderSchema {
	t.Helper()
	if _, err := os.Stat(schemaPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("AWS provider schema %s is required in CI: %v", schemaPath, err)
		}
		t.Skipf("AWS provider schema %s is absent (see ../shared/data/terraform/README.md); skipping the schema check", schemaPath)
	}
	schemaOnce.Do(func() {
		b, err := os.ReadFile(schemaPath)
		if err != nil {
			schemaErr = err
			return
		}
		var ps tfjson.ProviderSchemas
		if err := json.Unmarshal(b, &ps); err != nil {
			schemaErr = fmt.Errorf("%s: %w", schemaPath, err)
			return
		}
		schema = ps.Schemas[awsProvider]
		if schema == nil {
			schemaErr = fmt.Errorf("%s: no schema for %s", schemaPath, awsProvider)
		}
	})
	if schemaErr != nil {
		t.Fatal(schemaErr)
	}
	return schema
}

// Meta-arguments Terraform itself handles, by block kind.
var (
	resourceMetaAttrs  = set("count", "for_each", "depends_on", "provider")
	resourceMetaBlocks = set("lifecycle", "provisioner", "connection")
	dataMetaAttrs      = set("count", "for_each", "depends_on", "provider")
	dataMetaBlocks     = set("lifecycle")
	lifecycleAttrs     = set("create_before_destroy", "prevent_destroy", "ignore_changes", "replace_triggered_by")
	lifecycleBlocks    = set("precondition", "postcondition")
	dynamicAttrs       = set("for_each", "iterator", "labels")
)

func set(names ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

// validateSchema checks every resource and data block of m against the
// provider schema and returns one message per problem.
func validateSchema(m *module, ps *tfjson.ProviderSchema) []string {
	var problems []string
	report := func(b *hclsyntax.Block, path, format string, args ...any) {
		r := b.DefRange()
		problems = append(problems, fmt.Sprintf("%s:%d: %s: %s", filepath.Join(m.dir, r.Filename), r.Start.Line, path, fmt.Sprintf(format, args...)))
	}
	check := func(kind string, schemas map[string]*tfjson.Schema, metaAttrs, metaBlocks map[string]bool) {
		for _, b := range m.blocks(kind) {
			if len(b.Labels) != 2 {
				report(b, kind, "want two labels, have %d", len(b.Labels))
				continue
			}
			addr := b.Labels[0] + "." + b.Labels[1]
			if kind == "data" {
				addr = "data." + addr
			}
			s, ok := schemas[b.Labels[0]]
			if !ok || s.Block == nil {
				report(b, addr, "type %s is not in the AWS provider schema", b.Labels[0])
				continue
			}
			if _, c := b.Body.Attributes["count"]; c {
				if _, f := b.Body.Attributes["for_each"]; f {
					report(b, addr, "count and for_each are mutually exclusive")
				}
			}
			for _, mb := range b.Body.Blocks {
				if mb.Type == "lifecycle" {
					for name := range mb.Body.Attributes {
						if !lifecycleAttrs[name] {
							report(mb, addr+".lifecycle", "unknown attribute %q", name)
						}
					}
					for _, lb := range mb.Body.Blocks {
						if !lifecycleBlocks[lb.Type] {
							report(lb, addr+".lifecycle", "unknown block %q", lb.Type)
						}
					}
				}
			}
			validateBody(b, addr, s.Block, metaAttrs, metaBlocks, report)
		}
	}
	check("resource", ps.ResourceSchemas, resourceMetaAttrs, resourceMetaBlocks)
	check("data", ps.DataSourceSchemas, dataMetaAttrs, dataMetaBlocks)
	return problems
}

type reporter func(b *hclsyntax.Block, path, format string, args ...any)

// validateBody checks the attributes and nested blocks of b against sb.
func validateBody(b *hclsyntax.Block, path string, sb *tfjson.SchemaBlock, metaAttrs, metaBlocks map[string]bool, report reporter) {
	if sb.Deprecated {
		report(b, path, "block is deprecated")
	}
	names := make([]string, 0, len(b.Body.Attributes))
	for name := range b.Body.Attributes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if metaAttrs[name] {
			continue
		}
		if sa, ok := sb.Attributes[name]; ok {
			switch {
			case !sa.Required && !sa.Optional:
				report(b, path, "attribute %q is read-only (computed by the provider)", name)
			case sa.Deprecated:
				report(b, path, "attribute %q is deprecated", name)
			}
			continue
		}
		if _, ok := sb.NestedBlocks[name]; ok {
			report(b, path, "%q is a nested block, not an attribute: write %s { ... }", name, name)
			continue
		}
		report(b, path, "unknown attribute %q", name)
	}

	counts := map[string]int{}
	dynamic := map[string]bool{}
	for _, nb := range b.Body.Blocks {
		if metaBlocks[nb.Type] {
			continue
		}
		typ, body := nb.Type, nb
		if nb.Type == "dynamic" {
			if len(nb.Labels) != 1 {
				report(nb, path, "a dynamic block needs exactly one label")
				continue
			}
			typ = nb.Labels[0]
			for name := range nb.Body.Attributes {
				if !dynamicAttrs[name] {
					report(nb, path+".dynamic."+typ, "unknown attribute %q", name)
				}
			}
			if _, ok := nb.Body.Attributes["for_each"]; !ok {
				report(nb, path+".dynamic."+typ, "for_each is required")
			}
			contents := child(nb, "content")
			if len(contents) != 1 || len(nb.Body.Blocks) != 1 {
				report(nb, path+".dynamic."+typ, "want exactly one content block and nothing else")
				continue
			}
			body = contents[0]
			dynamic[typ] = true
		}
		st, ok := sb.NestedBlocks[typ]
		if !ok {
			if _, isAttr := sb.Attributes[typ]; isAttr {
				report(nb, path, "%q is an attribute, not a nested block: write %s = ...", typ, typ)
			} else {
				report(nb, path, "unknown nested block %q", typ)
			}
			continue
		}
		if nb.Type != "dynamic" && len(nb.Labels) > 0 {
			report(nb, path+"."+typ, "unexpected block labels %q", nb.Labels)
		}
		counts[typ]++
		validateBody(body, path+"."+typ, st.Block, nil, nil, report)
	}

	for _, name := range sortedKeys(sb.Attributes) {
		if sb.Attributes[name].Required {
			if _, ok := b.Body.Attributes[name]; !ok {
				report(b, path, "required attribute %q is missing", name)
			}
		}
	}
	for _, name := range sortedKeys(sb.NestedBlocks) {
		st := sb.NestedBlocks[name]
		n := counts[name]
		if dynamic[name] {
			continue // the count is only known at plan time
		}
		if st.MinItems > 0 && uint64(n) < st.MinItems {
			report(b, path, "nested block %q is required (at least %d)", name, st.MinItems)
		}
		max := st.MaxItems
		if st.NestingMode == tfjson.SchemaNestingModeSingle || st.NestingMode == tfjson.SchemaNestingModeGroup {
			max = 1
		}
		if max > 0 && uint64(n) > max {
			report(b, path, "nested block %q may appear at most %d time(s), found %d", name, max, n)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestProviderSchema validates every resource and data block of every module
// and of the dev environment against the AWS provider schema.
func TestProviderSchema(t *testing.T) {
	t.Parallel()
	ps := awsSchema(t)
	total := 0
	for _, dir := range moduleDirs {
		m := mustParseModule(t, dir)
		total += len(m.blocks("resource")) + len(m.blocks("data"))
		for _, p := range validateSchema(m, ps) {
			t.Error(p)
		}
	}
	if total < 50 {
		t.Errorf("only %d resource and data blocks were checked; the configuration seems incomplete", total)
	}
}

// TestProviderSchemaCatchesMistakes proves the validator reports each kind of
// mistake it is meant to catch, and accepts meta-arguments and dynamic blocks.
func TestProviderSchemaCatchesMistakes(t *testing.T) {
	t.Parallel()
	ps := awsSchema(t)
	tests := []struct {
		name string
		src  string
		want string // substring of the only expected problem; "" for none
	}{
		{"valid with meta-arguments", `
resource "aws_sqs_queue" "q" {
  count      = 2
  name       = "q-${count.index}"
  depends_on = []
  provider   = aws
  lifecycle {
    prevent_destroy = true
  }
}`, ""},
		{"valid dynamic block", `
resource "aws_lb" "l" {
  name = "l"
  dynamic "access_logs" {
    for_each = []
    content {
      bucket = access_logs.value
    }
  }
}`, ""},
		{"unknown type", `resource "aws_nope" "x" {}`, "not in the AWS provider schema"},
		{"unknown attribute", `resource "aws_sqs_queue" "q" { nmae = "q" }`, `unknown attribute "nmae"`},
		{"computed attribute", `resource "aws_sqs_queue" "q" { arn = "x" }`, `"arn" is read-only`},
		{"missing required attribute", `resource "aws_sns_topic_subscription" "s" {
  topic_arn = "t"
  protocol  = "sqs"
}`, `required attribute "endpoint" is missing`},
		{"block written as attribute", `resource "aws_dynamodb_table" "t" {
  name = "t"
  ttl  = { attribute_name = "x" }
}`, `"ttl" is a nested block`},
		{"attribute written as block", `resource "aws_sqs_queue" "q" {
  tags {
    a = "b"
  }
}`, `"tags" is an attribute`},
		{"unknown nested attribute", `resource "aws_dynamodb_table" "t" {
  name = "t"
  point_in_time_recovery {
    enabled = true
    enabld  = true
  }
}`, `unknown attribute "enabld"`},
		{"too many blocks", `resource "aws_dynamodb_table" "t" {
  name = "t"
  ttl {
    attribute_name = "a"
  }
  ttl {
    attribute_name = "b"
  }
}`, `"ttl" may appear at most 1`},
		{"missing required block", `resource "aws_lb_listener" "l" {
  load_balancer_arn = "x"
}`, `nested block "default_action" is required`},
		{"deprecated attribute", `resource "aws_dynamodb_table" "t" {
  name = "t"
  global_secondary_index {
    name            = "i"
    projection_type = "ALL"
    hash_key        = "k"
  }
}`, `"hash_key" is deprecated`},
		{"dynamic of an unknown block", `resource "aws_lb" "l" {
  dynamic "acess_logs" {
    for_each = []
    content {}
  }
}`, `unknown nested block "acess_logs"`},
		{"bad dynamic content", `resource "aws_lb" "l" {
  dynamic "access_logs" {
    for_each = []
    content {
      bucket = "x"
      bukket = "x"
    }
  }
}`, `unknown attribute "bukket"`},
		{"bad lifecycle", `resource "aws_sqs_queue" "q" {
  lifecycle {
    prevent_destory = true
  }
}`, `unknown attribute "prevent_destory"`},
		{"count with for_each", `resource "aws_sqs_queue" "q" {
  count    = 1
  for_each = {}
}`, "mutually exclusive"},
		{"data source", `data "aws_iam_policy_document" "d" {
  statement {
    actons = ["s3:GetObject"]
  }
}`, `unknown attribute "actons"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := parseSource("test.tf", tt.src)
			if err != nil {
				t.Fatal(err)
			}
			problems := validateSchema(m, ps)
			switch {
			case tt.want == "" && len(problems) > 0:
				t.Errorf("want no problems, got %q", problems)
			case tt.want != "" && (len(problems) != 1 || !strings.Contains(problems[0], tt.want)):
				t.Errorf("want one problem containing %q, got %q", tt.want, problems)
			}
		})
	}
}
