package terraform_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/hashicorp/terraform-config-inspect/tfconfig"
	"github.com/zclconf/go-cty/cty"

	"github.com/orderledger/orderledger/internal/resources"
	"github.com/orderledger/orderledger/messaging"
)

// devConfig is the dev environment and each module evaluated with the inputs
// the environment passes to it, as `terraform plan` would see them.
type devConfig struct {
	env     *module
	envEval *evaluator
	mods    map[string]*module    // by module call name
	evals   map[string]*evaluator // by module call name
	names   resources.Names
}

func loadDev(t *testing.T) *devConfig {
	t.Helper()
	d := &devConfig{
		env:   mustParseModule(t, "environments/dev"),
		mods:  map[string]*module{},
		evals: map[string]*evaluator{},
	}
	var err error
	if d.envEval, err = newEvaluator(d.env, nil); err != nil {
		t.Fatal(err)
	}
	envVar := d.envEval.vars["env"]
	if !envVar.IsKnown() || envVar.Type() != cty.String {
		t.Fatalf("environments/dev: variable env must default to a string, is %#v", envVar)
	}
	if got := envVar.AsString(); got != resources.DefaultEnv {
		t.Fatalf("environments/dev: env defaults to %q, the code's default is %q", got, resources.DefaultEnv)
	}
	d.names = resources.For(envVar.AsString())
	for _, call := range d.env.blocks("module") {
		name := call.Labels[0]
		src, diags := call.Body.Attributes["source"].Expr.Value(nil)
		if diags.HasErrors() {
			t.Fatalf("module %s: source: %s", name, diags.Error())
		}
		m := mustParseModule(t, filepath.Join("environments/dev", src.AsString()))
		in, err := d.envEval.moduleInputs(call)
		if err != nil {
			t.Fatal(err)
		}
		e, err := newEvaluator(m, in)
		if err != nil {
			t.Fatal(err)
		}
		d.mods[name], d.evals[name] = m, e
	}
	for _, want := range []string{"networking", "eventstore", "messaging", "lambda", "container", "api_gateway"} {
		if d.mods[want] == nil {
			t.Fatalf("environments/dev does not call module %q", want)
		}
	}
	return d
}

func wantString(t *testing.T, what string, v cty.Value, want string) {
	t.Helper()
	if !v.IsKnown() || v.IsNull() || v.Type() != cty.String || v.AsString() != want {
		t.Errorf("%s = %#v, want %q", what, v, want)
	}
}

func wantBool(t *testing.T, what string, v cty.Value, want bool) {
	t.Helper()
	if !v.IsKnown() || v.IsNull() || v.Type() != cty.Bool || v.True() != want {
		t.Errorf("%s = %#v, want %v", what, v, want)
	}
}

func wantNumber(t *testing.T, what string, v cty.Value) int64 {
	t.Helper()
	if !v.IsKnown() || v.IsNull() || v.Type() != cty.Number {
		t.Fatalf("%s = %#v, want a known number", what, v)
	}
	n, _ := v.AsBigFloat().Int64()
	return n
}

// TestNamesMatchCode checks that every resource name the environment creates
// is the one the code derives from the same environment (package resources).
func TestNamesMatchCode(t *testing.T) {
	t.Parallel()
	d := loadDev(t)
	n := d.names
	for _, c := range []struct {
		module, typ, name, attr, want string
	}{
		{"eventstore", "aws_dynamodb_table", "events", "name", n.EventsTable},
		{"eventstore", "aws_dynamodb_table", "orders", "name", n.OrdersTable},
		{"messaging", "aws_sns_topic", "events", "name", n.EventsTopic},
		{"messaging", "aws_sns_topic", "completed", "name", n.CompletedTopic},
		{"messaging", "aws_sqs_queue", "processing", "name", n.ProcessingQueue},
		{"messaging", "aws_sqs_queue", "dlq", "name", n.DeadLetterQueue},
		{"messaging", "aws_sqs_queue", "stream_failures", "name", n.StreamFailureQueue},
	} {
		b := d.mods[c.module].resource(t, c.typ, c.name)
		wantString(t, fmt.Sprintf("module.%s.%s.%s.%s", c.module, c.typ, c.name, c.attr), d.evals[c.module].attr(t, b, c.attr, nil), c.want)
	}

	// The functions are declared in one map; every function resource is for_each over it.
	funcs := d.evals["lambda"].locals["all_functions"]
	if !funcs.IsWhollyKnown() || !funcs.CanIterateElements() {
		t.Fatalf("module.lambda: local.all_functions does not evaluate: %#v", funcs)
	}
	want := map[string]string{
		"processor": n.ProcessorFunc,
		"projector": n.ProjectorFunc,
		"publisher": n.PublisherFunc,
		"api":       n.APIFunc,
	}
	if got := funcs.LengthInt(); got != len(want) {
		t.Errorf("module.lambda: %d functions declared, want %d", got, len(want))
	}
	for key, name := range want {
		if !funcs.Type().HasAttribute(key) {
			t.Errorf("module.lambda: function %q is not declared", key)
			continue
		}
		wantString(t, "module.lambda: function "+key+" name", funcs.GetAttr(key).GetAttr("name"), name)
	}
	fn := d.mods["lambda"].resource(t, "aws_lambda_function", "function")
	if a := fn.Body.Attributes["for_each"]; a == nil || !references(a.Expr, "local.functions") {
		t.Error("module.lambda: aws_lambda_function.function must be for_each = local.functions")
	}
	if a := fn.Body.Attributes["function_name"]; a == nil || !references(a.Expr, "each.value.name") {
		t.Error("module.lambda: function_name must be each.value.name")
	}
}

// TestEventStoreTables checks keys, stream, TTL, indexes, recovery, encryption
// and deletion protection of both tables.
func TestEventStoreTables(t *testing.T) {
	t.Parallel()
	d := loadDev(t)
	m, e := d.mods["eventstore"], d.evals["eventstore"]

	attrTypes := func(b *hclsyntax.Block) map[string]string {
		out := map[string]string{}
		for _, a := range child(b, "attribute") {
			out[e.attr(t, a, "name", nil).AsString()] = e.attr(t, a, "type", nil).AsString()
		}
		return out
	}
	protection := func(b *hclsyntax.Block) {
		a := b.Body.Attributes["deletion_protection_enabled"]
		if a == nil || !references(a.Expr, "var.deletion_protection") {
			t.Errorf("%s: deletion_protection_enabled must be var.deletion_protection", b.Labels[1])
		}
		pitr := child(b, "point_in_time_recovery")
		if len(pitr) != 1 {
			t.Fatalf("%s: point_in_time_recovery is missing", b.Labels[1])
		}
		wantBool(t, b.Labels[1]+": point_in_time_recovery.enabled", e.attr(t, pitr[0], "enabled", nil), true)
		sse := child(b, "server_side_encryption")
		if len(sse) != 1 {
			t.Fatalf("%s: server_side_encryption is missing", b.Labels[1])
		}
		wantBool(t, b.Labels[1]+": server_side_encryption.enabled", e.attr(t, sse[0], "enabled", nil), true)
		if a := sse[0].Body.Attributes["kms_key_arn"]; a == nil || !references(a.Expr, "var.kms_key_arn") {
			t.Errorf("%s: server_side_encryption must use var.kms_key_arn", b.Labels[1])
		}
	}
	if def := e.vars["deletion_protection"]; def.Type() != cty.Bool {
		t.Errorf("eventstore: variable deletion_protection must be a bool, is %#v", def)
	}

	events := m.resource(t, "aws_dynamodb_table", "events")
	wantString(t, "events.hash_key", e.attr(t, events, "hash_key", nil), "stream_id")
	wantString(t, "events.range_key", e.attr(t, events, "range_key", nil), "version")
	if got, want := attrTypes(events), map[string]string{"stream_id": "S", "version": "N"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events attributes = %v, want %v", got, want)
	}
	wantBool(t, "events.stream_enabled", e.attr(t, events, "stream_enabled", nil), true)
	wantString(t, "events.stream_view_type", e.attr(t, events, "stream_view_type", nil), resources.StreamViewType)
	ttl := child(events, "ttl")
	if len(ttl) != 1 {
		t.Fatal("events: ttl is missing")
	}
	wantString(t, "events.ttl.attribute_name", e.attr(t, ttl[0], "attribute_name", nil), resources.IdempotencyTTLAttribute)
	wantBool(t, "events.ttl.enabled", e.attr(t, ttl[0], "enabled", nil), true)
	protection(events)

	orders := m.resource(t, "aws_dynamodb_table", "orders")
	wantString(t, "orders.hash_key", e.attr(t, orders, "hash_key", nil), "order_id")
	if _, ok := orders.Body.Attributes["range_key"]; ok {
		t.Error("orders: the read table is keyed by order_id alone")
	}
	if got, want := attrTypes(orders), map[string]string{"order_id": "S", "status": "S", "customer_name": "S", "created_at": "S"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("orders attributes = %v, want %v", got, want)
	}
	indexes := map[string]string{}
	for _, gsi := range child(orders, "global_secondary_index") {
		keys := map[string]string{}
		for _, k := range child(gsi, "key_schema") {
			keys[e.attr(t, k, "key_type", nil).AsString()] = e.attr(t, k, "attribute_name", nil).AsString()
		}
		indexes[e.attr(t, gsi, "name", nil).AsString()] = keys["HASH"] + "/" + keys["RANGE"]
	}
	wantIndexes := map[string]string{
		resources.StatusIndex:   "status/created_at",
		resources.CustomerIndex: "customer_name/created_at",
	}
	if fmt.Sprint(indexes) != fmt.Sprint(wantIndexes) {
		t.Errorf("orders indexes = %v, want %v", indexes, wantIndexes)
	}
	protection(orders)
}

// TestMessaging checks the redrive policy, the visibility timeout against the
// processor's timeout, the queue policy and the subscription.
func TestMessaging(t *testing.T) {
	t.Parallel()
	d := loadDev(t)
	m, e := d.mods["messaging"], d.evals["messaging"]

	processing := m.resource(t, "aws_sqs_queue", "processing")
	redrive, ok := e.jsonArg(processing.Body.Attributes["redrive_policy"].Expr, nil)
	if !ok {
		t.Fatal("processing.redrive_policy must be jsonencode({...})")
	}
	if got := wantNumber(t, "redrive_policy.maxReceiveCount", redrive.GetAttr("maxReceiveCount")); got != messaging.MaxReceiveCount {
		t.Errorf("redrive_policy.maxReceiveCount = %d, want %d", got, messaging.MaxReceiveCount)
	}
	if !references(processing.Body.Attributes["redrive_policy"].Expr, "aws_sqs_queue.dlq.arn") {
		t.Error("redrive_policy.deadLetterTargetArn must be aws_sqs_queue.dlq.arn")
	}

	visibility := wantNumber(t, "processing.visibility_timeout_seconds", e.attr(t, processing, "visibility_timeout_seconds", nil))
	if want := int64(resources.VisibilityTimeout.Seconds()); visibility != want {
		t.Errorf("processing.visibility_timeout_seconds = %d, want %d", visibility, want)
	}
	// The processor's timeout as the lambda module sets it.
	funcs := d.evals["lambda"].locals["all_functions"]
	timeout := wantNumber(t, "processor timeout", funcs.GetAttr("processor").GetAttr("timeout"))
	if want := int64(resources.ProcessorTimeout.Seconds()); timeout != want {
		t.Errorf("processor timeout = %d s, want %d s", timeout, want)
	}
	if visibility < 6*timeout {
		t.Errorf("visibility timeout %d s is less than 6x the processor timeout %d s", visibility, timeout)
	}

	if got := wantNumber(t, "stream_failures.message_retention_seconds", e.attr(t, m.resource(t, "aws_sqs_queue", "stream_failures"), "message_retention_seconds", nil)); got != int64(resources.FailureRetention.Seconds()) {
		t.Errorf("stream failures queue keeps messages %d s, the code's %s is %d s", got, resources.FailureRetention, int64(resources.FailureRetention.Seconds()))
	}
	for _, q := range []string{"processing", "dlq", "stream_failures"} {
		if a := m.resource(t, "aws_sqs_queue", q).Body.Attributes["kms_master_key_id"]; a == nil {
			t.Errorf("aws_sqs_queue.%s is not encrypted with the KMS key", q)
		}
	}
	for _, topic := range []string{"events", "completed"} {
		if a := m.resource(t, "aws_sns_topic", topic).Body.Attributes["kms_master_key_id"]; a == nil {
			t.Errorf("aws_sns_topic.%s is not encrypted with the KMS key", topic)
		}
	}

	// The queue policy admits the events topic only.
	pol := m.resource(t, "aws_sqs_queue_policy", "processing")
	if !references(pol.Body.Attributes["queue_url"].Expr, "aws_sqs_queue.processing") {
		t.Error("aws_sqs_queue_policy.processing must apply to the processing queue")
	}
	doc := m.blocks("data", "aws_iam_policy_document", "processing_queue")
	if len(doc) != 1 || !references(pol.Body.Attributes["policy"].Expr, "data.aws_iam_policy_document.processing_queue") {
		t.Fatal("aws_sqs_queue_policy.processing must use data.aws_iam_policy_document.processing_queue")
	}
	for _, st := range child(doc[0], "statement") {
		principals := child(st, "principals")
		if len(principals) != 1 {
			t.Fatal("queue policy statement: want exactly one principals block")
		}
		ids, _ := stringList(e.attr(t, principals[0], "identifiers", nil))
		if !slices.Equal(ids, []string{"sns.amazonaws.com"}) {
			t.Errorf("queue policy principals = %v, want sns.amazonaws.com only", ids)
		}
		limited := false
		for _, c := range child(st, "condition") {
			if e.attr(t, c, "variable", nil).AsString() == "aws:SourceArn" && references(c.Body.Attributes["values"].Expr, "aws_sns_topic.events.arn") {
				limited = true
			}
		}
		if !limited {
			t.Error("queue policy statement must be limited by aws:SourceArn to aws_sns_topic.events")
		}
	}

	sub := m.resource(t, "aws_sns_topic_subscription", "processing")
	wantString(t, "subscription.protocol", e.attr(t, sub, "protocol", nil), "sqs")
	wantBool(t, "subscription.raw_message_delivery", e.attr(t, sub, "raw_message_delivery", nil), true)
	if !references(sub.Body.Attributes["topic_arn"].Expr, "aws_sns_topic.events") || !references(sub.Body.Attributes["endpoint"].Expr, "aws_sqs_queue.processing") {
		t.Error("the subscription must connect the events topic to the processing queue")
	}
	filter, ok := e.jsonArg(sub.Body.Attributes["filter_policy"].Expr, nil)
	if !ok || !filter.Type().IsObjectType() {
		t.Fatal("subscription.filter_policy must be jsonencode({...})")
	}
	if attrs := sortedKeys(filter.Type().AttributeTypes()); !slices.Equal(attrs, []string{messaging.AttrEventType}) {
		t.Errorf("filter policy filters on %v, want [%s]", attrs, messaging.AttrEventType)
	}
	wantString(t, "subscription.filter_policy_scope", e.attr(t, sub, "filter_policy_scope", nil), "MessageAttributes")
}

// TestLambdaFunctions checks runtime, architecture, packages, roles, log
// groups and alarms of the functions.
func TestLambdaFunctions(t *testing.T) {
	t.Parallel()
	d := loadDev(t)
	m, e := d.mods["lambda"], d.evals["lambda"]

	dir := e.vars["package_dir"]
	if !dir.IsKnown() || dir.Type() != cty.String || !strings.HasSuffix(dir.AsString(), "/build/lambdas") {
		t.Fatalf("module.lambda package_dir = %#v, want the build/lambdas directory of `make lambdas`", dir)
	}

	funcs := e.locals["all_functions"]
	fn := m.resource(t, "aws_lambda_function", "function")
	for it := funcs.ElementIterator(); it.Next(); {
		key, val := it.Element()
		each := map[string]cty.Value{"each": cty.ObjectVal(map[string]cty.Value{"key": key, "value": val})}
		k := key.AsString()
		wantString(t, k+".runtime", e.attr(t, fn, "runtime", each), "provided.al2023")
		wantString(t, k+".handler", e.attr(t, fn, "handler", each), "bootstrap")
		if archs, _ := stringList(e.attr(t, fn, "architectures", each)); !slices.Equal(archs, []string{"arm64"}) {
			t.Errorf("%s.architectures = %v, want [arm64]", k, archs)
		}
		wantString(t, k+".filename", e.attr(t, fn, "filename", each), dir.AsString()+"/"+k+".zip")
	}
	if a := fn.Body.Attributes["source_code_hash"]; a == nil {
		t.Error("aws_lambda_function.function: source_code_hash must follow the zip")
	}
	if len(child(fn, "tracing_config")) != 1 || len(child(fn, "vpc_config")) != 1 {
		t.Error("aws_lambda_function.function: tracing_config and vpc_config are required")
	}

	// One role per function: the role is indexed by the function's own key.
	roleSrc := m.source(fn.Body.Attributes["role"].Expr)
	match := regexp.MustCompile(`^aws_iam_role\.(\w+)\[each\.key\]\.arn$`).FindStringSubmatch(roleSrc)
	if match == nil {
		t.Fatalf("aws_lambda_function.function: role = %s, want aws_iam_role.<name>[each.key].arn", roleSrc)
	}
	role := m.resource(t, "aws_iam_role", match[1])
	if a := role.Body.Attributes["for_each"]; a == nil || !references(a.Expr, "local.functions") {
		t.Error("the functions' role must be for_each = local.functions (one role per function)")
	}

	lg := m.resource(t, "aws_cloudwatch_log_group", "function")
	if a := lg.Body.Attributes["retention_in_days"]; a == nil {
		t.Error("the functions' log groups need a retention")
	}

	alarmOn := map[string]bool{}
	for _, a := range m.blocks("resource", "aws_cloudwatch_metric_alarm") {
		v := e.attr(t, a, "metric_name", nil)
		alarmOn[v.AsString()] = true
	}
	for _, metric := range []string{"ApproximateNumberOfMessagesVisible", "IteratorAge", "Errors"} {
		if !alarmOn[metric] {
			t.Errorf("no alarm on %s", metric)
		}
	}
	dlqAlarm := m.resource(t, "aws_cloudwatch_metric_alarm", "dlq_depth")
	if !references(dlqAlarm.Body.Attributes["dimensions"].Expr, "var.dlq_name") {
		t.Error("the DLQ depth alarm must watch var.dlq_name")
	}
	if !references(d.env.blocks("module", "lambda")[0].Body.Attributes["dlq_name"].Expr, "module.messaging.dlq_name") {
		t.Error("environments/dev must pass module.messaging.dlq_name to the lambda module")
	}
}

// TestEventSourceMappings checks every event source mapping in every module.
func TestEventSourceMappings(t *testing.T) {
	t.Parallel()
	streams := 0
	total := 0
	for _, dir := range moduleDirs {
		m := mustParseModule(t, dir)
		e, err := newEvaluator(m, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range m.blocks("resource", "aws_lambda_event_source_mapping") {
			total++
			name := dir + ": " + b.Labels[1]
			if types, _ := stringList(e.attr(t, b, "function_response_types", nil)); !slices.Equal(types, []string{"ReportBatchItemFailures"}) {
				t.Errorf("%s: function_response_types = %v, want [ReportBatchItemFailures]", name, types)
			}
			if !references(b.Body.Attributes["event_source_arn"].Expr, "var.events_stream_arn") {
				continue
			}
			streams++
			wantBool(t, name+": bisect_batch_on_function_error", e.attr(t, b, "bisect_batch_on_function_error", nil), true)
			if retries := wantNumber(t, name+": maximum_retry_attempts", e.attr(t, b, "maximum_retry_attempts", nil)); retries < 0 || retries > 10 {
				t.Errorf("%s: maximum_retry_attempts = %d, want a bound in [0, 10]", name, retries)
			} else if retries != resources.StreamMaxRetryAttempts {
				t.Errorf("%s: maximum_retry_attempts defaults to %d, the local mappings retry %d times (resources.StreamMaxRetryAttempts)", name, retries, resources.StreamMaxRetryAttempts)
			}
			dc := child(b, "destination_config")
			if len(dc) != 1 || len(child(dc[0], "on_failure")) != 1 {
				t.Errorf("%s: an on-failure destination is required", name)
			}
		}
	}
	if total != 3 || streams != 2 {
		t.Errorf("found %d mappings (%d on the stream), want 3 (2 on the stream)", total, streams)
	}
}

// policyStatements returns, for every IAM policy in m, its statements'
// actions: from aws_iam_policy_document data sources and from jsonencode'd
// policies in any attribute whose name ends in "policy".
func policyStatements(m *module) (map[string][]cty.Value, error) {
	e, err := newEvaluator(m, nil)
	if err != nil {
		return nil, err
	}
	out := map[string][]cty.Value{}
	for _, doc := range m.blocks("data", "aws_iam_policy_document") {
		for i, st := range child(doc, "statement") {
			where := fmt.Sprintf("%s: data.aws_iam_policy_document.%s statement %d", m.dir, doc.Labels[1], i)
			if _, ok := st.Body.Attributes["not_actions"]; ok {
				out[where] = append(out[where], cty.StringVal("not_actions"))
				continue
			}
			a, ok := st.Body.Attributes["actions"]
			if !ok {
				out[where] = append(out[where], cty.NilVal)
				continue
			}
			v, diags := e.eval(a.Expr, nil)
			if diags.HasErrors() {
				return nil, fmt.Errorf("%s: %s", where, diags.Error())
			}
			out[where] = append(out[where], v)
		}
	}
	for _, kind := range []string{"resource", "data"} {
		for _, b := range m.blocks(kind) {
			var walk func(*hclsyntax.Body, string)
			walk = func(body *hclsyntax.Body, path string) {
				for name, a := range body.Attributes {
					if !strings.HasSuffix(name, "policy") {
						continue
					}
					v, ok := e.jsonArg(a.Expr, nil)
					if !ok || !v.Type().IsObjectType() || !v.Type().HasAttribute("Statement") {
						continue
					}
					sts := v.GetAttr("Statement")
					if !sts.CanIterateElements() {
						out[path+"."+name] = append(out[path+"."+name], cty.NilVal)
						continue
					}
					for it := sts.ElementIterator(); it.Next(); {
						_, st := it.Element()
						where := path + "." + name
						switch {
						case st.Type().IsObjectType() && st.Type().HasAttribute("NotAction"):
							out[where] = append(out[where], cty.StringVal("NotAction"))
						case st.Type().IsObjectType() && st.Type().HasAttribute("Action"):
							out[where] = append(out[where], st.GetAttr("Action"))
						default:
							out[where] = append(out[where], cty.NilVal)
						}
					}
				}
				for _, nb := range body.Blocks {
					walk(nb.Body, path+"."+nb.Type)
				}
			}
			walk(b.Body, fmt.Sprintf("%s: %s.%s", m.dir, b.Labels[0], b.Labels[1]))
		}
	}
	return out, nil
}

// wildcardActions returns the problems among the statements: actions that
// contain "*", NotAction, or actions that are not known strings.
func wildcardActions(stmts map[string][]cty.Value) []string {
	var problems []string
	for _, where := range sortedKeys(stmts) {
		for _, v := range stmts[where] {
			if v == cty.NilVal {
				problems = append(problems, where+": a statement without actions")
				continue
			}
			if v.Type() == cty.String && v.IsKnown() {
				if s := v.AsString(); s == "not_actions" || s == "NotAction" || strings.Contains(s, "*") {
					problems = append(problems, fmt.Sprintf("%s: %q is not allowed", where, s))
				}
				continue
			}
			actions, ok := stringList(v)
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: actions must be known strings, are %#v", where, v))
				continue
			}
			for _, a := range actions {
				if strings.Contains(a, "*") {
					problems = append(problems, fmt.Sprintf("%s: wildcard action %q", where, a))
				}
			}
		}
	}
	return problems
}

// TestNoWildcardActions checks that no IAM statement anywhere grants a
// wildcard action.
func TestNoWildcardActions(t *testing.T) {
	t.Parallel()
	total := 0
	for _, dir := range moduleDirs {
		m := mustParseModule(t, dir)
		stmts, err := policyStatements(m)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range stmts {
			total += len(s)
		}
		for _, p := range wildcardActions(stmts) {
			t.Error(p)
		}
	}
	if total < 20 {
		t.Errorf("only %d policy statements found; the policy walk seems broken", total)
	}
}

// TestNoWildcardActionsCatchesMistakes proves the IAM check fails on each
// kind of wildcard.
func TestNoWildcardActionsCatchesMistakes(t *testing.T) {
	t.Parallel()
	for name, src := range map[string]string{
		"document star": `data "aws_iam_policy_document" "d" {
  statement {
    actions   = ["*"]
    resources = ["arn:aws:s3:::b"]
  }
}`,
		"document service star": `data "aws_iam_policy_document" "d" {
  statement {
    actions   = ["dynamodb:Get*"]
    resources = ["arn:aws:s3:::b"]
  }
}`,
		"document not_actions": `data "aws_iam_policy_document" "d" {
  statement {
    not_actions = ["s3:GetObject"]
    resources   = ["*"]
  }
}`,
		"jsonencode star": `resource "aws_kms_key" "k" {
  policy = jsonencode({
    Statement = [{ Effect = "Allow", Action = "kms:*", Resource = "*", Principal = { AWS = aws_iam_role.r.arn } }]
  })
}`,
		"jsonencode list": `resource "aws_sqs_queue_policy" "p" {
  queue_url = "q"
  policy = jsonencode({
    Statement = [{ Effect = "Allow", Action = ["sqs:SendMessage", "sqs:*"], Resource = aws_sqs_queue.q.arn }]
  })
}`,
		"unknown actions": `data "aws_iam_policy_document" "d" {
  statement {
    actions   = var.actions
    resources = ["*"]
  }
}
variable "actions" {
  type        = list(string)
  description = "x"
}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			m, err := parseSource("test.tf", src)
			if err != nil {
				t.Fatal(err)
			}
			stmts, err := policyStatements(m)
			if err != nil {
				t.Fatal(err)
			}
			if problems := wildcardActions(stmts); len(problems) != 1 {
				t.Errorf("want one problem, got %q", problems)
			}
		})
	}
}

// TestVariablesAndProviders loads every module with terraform-config-inspect:
// every variable is typed and described, every output described, and the AWS
// provider pinned to ~> 6.47.
func TestVariablesAndProviders(t *testing.T) {
	t.Parallel()
	for _, dir := range moduleDirs {
		mod, diags := tfconfig.LoadModule(dir)
		if diags.HasErrors() {
			t.Fatalf("%s: %v", dir, diags.Err())
		}
		if len(mod.Variables) == 0 || len(mod.Outputs) == 0 {
			t.Errorf("%s: want variables.tf and outputs.tf with content", dir)
		}
		for _, v := range mod.Variables {
			if v.Type == "" {
				t.Errorf("%s: variable %q has no type", dir, v.Name)
			}
			if strings.TrimSpace(v.Description) == "" {
				t.Errorf("%s: variable %q has no description", dir, v.Name)
			}
		}
		for _, o := range mod.Outputs {
			if strings.TrimSpace(o.Description) == "" {
				t.Errorf("%s: output %q has no description", dir, o.Name)
			}
		}
		aws := mod.RequiredProviders["aws"]
		if aws == nil || aws.Source != "hashicorp/aws" || !slices.Equal(aws.VersionConstraints, []string{"~> 6.47"}) {
			t.Errorf("%s: required_providers.aws = %+v, want hashicorp/aws ~> 6.47", dir, aws)
		}
		for _, f := range []string{"variables.tf", "outputs.tf", "README.md"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil && (f != "README.md" || strings.HasPrefix(dir, "modules/")) {
				t.Errorf("%s: %s is missing", dir, f)
			}
		}
		if strings.HasPrefix(dir, "modules/") {
			readme := string(readFile(t, filepath.Join(dir, "README.md")))
			for name := range mod.Variables {
				if !strings.Contains(readme, "`"+name+"`") {
					t.Errorf("%s/README.md does not document input %q", dir, name)
				}
			}
			for name := range mod.Outputs {
				if !strings.Contains(readme, "`"+name+"`") {
					t.Errorf("%s/README.md does not document output %q", dir, name)
				}
			}
		}
	}
}

// TestDevOutputs checks the outputs the deploy steps rely on.
func TestDevOutputs(t *testing.T) {
	t.Parallel()
	mod, diags := tfconfig.LoadModule("environments/dev")
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	for _, name := range []string{
		"alb_dns_name", "api_url",
		"events_table_name", "orders_table_name",
		"events_topic_arn", "completed_topic_arn",
		"processing_queue_url", "dlq_url",
	} {
		if mod.Outputs[name] == nil {
			t.Errorf("environments/dev: output %q is missing", name)
		}
	}
}

// TestFormatted checks that every .tf file is in canonical format
// (`terraform fmt` would change nothing).
func TestFormatted(t *testing.T) {
	t.Parallel()
	files := 0
	for _, dir := range moduleDirs {
		paths, _ := filepath.Glob(filepath.Join(dir, "*.tf"))
		for _, p := range paths {
			files++
			src := readFile(t, p)
			if got := hclwrite.Format(src); !bytes.Equal(got, src) {
				t.Errorf("%s is not formatted (run terraform fmt -recursive terraform)", p)
			}
		}
	}
	if files < 30 {
		t.Errorf("only %d .tf files found", files)
	}
}

// TestContainer checks the service, its health check and the Dockerfile.
func TestContainer(t *testing.T) {
	t.Parallel()
	d := loadDev(t)
	m, e := d.mods["container"], d.evals["container"]

	td := m.resource(t, "aws_ecs_task_definition", "this")
	defs, ok := e.jsonArg(td.Body.Attributes["container_definitions"].Expr, nil)
	if !ok || defs.LengthInt() != 1 {
		t.Fatal("container_definitions must be jsonencode([one container])")
	}
	c := defs.Index(cty.NumberIntVal(0))
	cmd, _ := stringList(c.GetAttr("command"))
	if len(cmd) < 3 || !slices.Equal(cmd[:3], []string{"serve", "--backend", "aws"}) {
		t.Errorf("container command = %v, want serve --backend aws ...", cmd)
	}
	if !slices.Contains(cmd, "--local-mappings=false") {
		t.Errorf("container command = %v: the Lambdas consume the stream and queue, so it needs --local-mappings=false", cmd)
	}
	port := c.GetAttr("portMappings").Index(cty.NumberIntVal(0)).GetAttr("containerPort")
	if got := wantNumber(t, "containerPort", port); got != 8000 {
		t.Errorf("containerPort = %d, want 8000", got)
	}
	wantBool(t, "readonlyRootFilesystem", c.GetAttr("readonlyRootFilesystem"), true)

	// The task role allows what `serve --backend aws` calls before it
	// serves: aws/bootstrap.Resolve's reads of the environment.
	stmts, err := policyStatements(m)
	if err != nil {
		t.Fatal(err)
	}
	granted := map[string]bool{}
	for where, vs := range stmts {
		if !strings.Contains(where, "aws_iam_policy_document.task ") {
			continue
		}
		for _, v := range vs {
			actions, _ := stringList(v)
			for _, a := range actions {
				granted[a] = true
			}
		}
	}
	for _, a := range []string{"dynamodb:DescribeTable", "sns:ListTopics", "sqs:GetQueueUrl", "sqs:GetQueueAttributes", "dynamodb:PutItem", "dynamodb:Query"} {
		if !granted[a] {
			t.Errorf("the container's task role does not allow %s, which serve --backend aws calls at start or to serve", a)
		}
	}

	tg := m.resource(t, "aws_lb_target_group", "this")
	if got := wantNumber(t, "target group port", e.attr(t, tg, "port", nil)); got != 8000 {
		t.Errorf("target group port = %d, want 8000", got)
	}
	hc := child(tg, "health_check")
	if len(hc) != 1 {
		t.Fatal("target group health_check is missing")
	}
	wantString(t, "health_check.path", e.attr(t, hc[0], "path", nil), "/healthz")

	svc := m.resource(t, "aws_ecs_service", "this")
	wantString(t, "service launch_type", e.attr(t, svc, "launch_type", nil), "FARGATE")
	nc := child(svc, "network_configuration")
	if len(nc) != 1 {
		t.Fatal("service network_configuration is missing")
	}
	wantBool(t, "assign_public_ip", e.attr(t, nc[0], "assign_public_ip", nil), false)

	df := string(readFile(t, filepath.Join("..", "Dockerfile")))
	for _, want := range []string{"CGO_ENABLED=0", "./cmd/ledger", "EXPOSE 8000", "USER ", `"serve", "--backend", "aws"`} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile does not contain %q", want)
		}
	}
	froms := regexp.MustCompile(`(?m)^FROM\s+(?:--platform=\S+\s+)?(\S+)`).FindAllStringSubmatch(df, -1)
	if len(froms) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a multi-stage build", len(froms))
	}
	if final := froms[len(froms)-1][1]; final != "scratch" && !strings.HasPrefix(final, "gcr.io/distroless/static") {
		t.Errorf("Dockerfile's final stage is %s, want scratch or a distroless static image", final)
	}
	if strings.Contains(df, "USER root") || strings.Contains(df, "USER 0") {
		t.Error("Dockerfile must run as a non-root user")
	}
}
