package terraform_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// trustProblems checks one trust policy document of the github_oidc module:
// every statement lets the OIDC provider assume the role with a web identity
// only, for audience sts.amazonaws.com and exactly the wanted subject (no
// StringLike, no pattern), so no other repository, branch or environment
// can use the role.
func trustProblems(t *testing.T, e *evaluator, doc *hclsyntax.Block, wantSub string) []string {
	t.Helper()
	var problems []string
	name := "data.aws_iam_policy_document." + doc.Labels[1]
	statements := child(doc, "statement")
	if len(statements) == 0 {
		return []string{name + ": no statement"}
	}
	for _, st := range statements {
		if effect, ok := st.Body.Attributes["effect"]; ok {
			if v, _ := e.eval(effect.Expr, nil); !v.IsKnown() || v.AsString() != "Allow" {
				problems = append(problems, name+": effect must be Allow")
			}
		}
		actions, _ := stringList(e.attr(t, st, "actions", nil))
		if !slices.Equal(actions, []string{"sts:AssumeRoleWithWebIdentity"}) {
			problems = append(problems, name+": actions must be [sts:AssumeRoleWithWebIdentity]")
		}
		principals := child(st, "principals")
		if len(principals) != 1 || e.attr(t, principals[0], "type", nil).AsString() != "Federated" ||
			!references(principals[0].Body.Attributes["identifiers"].Expr, "local.provider_arn") {
			problems = append(problems, name+": the one principal must be the OIDC provider (Federated, local.provider_arn)")
		}
		conds := map[string][]string{}
		for _, c := range child(st, "condition") {
			test := e.attr(t, c, "test", nil).AsString()
			variable := e.attr(t, c, "variable", nil).AsString()
			values, ok := stringList(e.attr(t, c, "values", nil))
			if test != "StringEquals" {
				problems = append(problems, name+": condition on "+variable+" must be StringEquals, is "+test)
			}
			if !ok {
				problems = append(problems, name+": condition on "+variable+" has unknown values")
			}
			conds[variable] = append(conds[variable], values...)
		}
		if got := conds["token.actions.githubusercontent.com:aud"]; !slices.Equal(got, []string{"sts.amazonaws.com"}) {
			problems = append(problems, name+": aud must be exactly sts.amazonaws.com")
		}
		if got := conds["token.actions.githubusercontent.com:sub"]; !slices.Equal(got, []string{wantSub}) {
			problems = append(problems, name+": sub must be exactly "+wantSub+", is "+strings.Join(got, ", "))
		}
		for _, v := range conds["token.actions.githubusercontent.com:sub"] {
			if strings.ContainsAny(v, "*?") {
				problems = append(problems, name+": sub must not be a pattern")
			}
		}
	}
	return problems
}

// oidcModule is the github_oidc module as the dev environment calls it, for
// a repository given here (the environment passes its variable).
func oidcModule(t *testing.T, dir string) (*module, *evaluator) {
	t.Helper()
	m := mustParseModule(t, dir)
	e, err := newEvaluator(m, map[string]cty.Value{
		"env":                    cty.StringVal("dev"),
		"github_repository":      cty.StringVal("example/orderledger"),
		"ecr_repository_arn":     cty.UnknownVal(cty.String),
		"terraform_state_bucket": cty.StringVal("example-state"),
	})
	if err != nil {
		t.Fatal(err)
	}
	// The account, region and partition as the data sources would read them,
	// so that the policies' ARNs are known.
	data := cty.ObjectVal(map[string]cty.Value{
		"aws_caller_identity": cty.ObjectVal(map[string]cty.Value{"current": cty.ObjectVal(map[string]cty.Value{"account_id": cty.StringVal("123456789012")})}),
		"aws_region":          cty.ObjectVal(map[string]cty.Value{"current": cty.ObjectVal(map[string]cty.Value{"region": cty.StringVal("us-west-2")})}),
		"aws_partition":       cty.ObjectVal(map[string]cty.Value{"current": cty.ObjectVal(map[string]cty.Value{"partition": cty.StringVal("aws")})}),
	})
	for range 3 { // locals refer to locals: three rounds settle them here
		for _, l := range m.blocks("locals") {
			for name, a := range l.Body.Attributes {
				if v, diags := e.eval(a.Expr, map[string]cty.Value{"data": data}); !diags.HasErrors() {
					e.locals[name] = v
				}
			}
		}
	}
	return m, e
}

// TestGitHubOIDCTrust checks who can assume the CI roles: the publish and plan
// roles only the repository's main branch, the apply role only its protected
// environment's jobs; and that the dev environment wires the module.
func TestGitHubOIDCTrust(t *testing.T) {
	t.Parallel()
	m, e := oidcModule(t, "modules/github_oidc")

	provider := m.resource(t, "aws_iam_openid_connect_provider", "github")
	wantString(t, "oidc provider url", e.attr(t, provider, "url", nil), "https://token.actions.githubusercontent.com")
	if ids, _ := stringList(e.attr(t, provider, "client_id_list", nil)); !slices.Equal(ids, []string{"sts.amazonaws.com"}) {
		t.Errorf("oidc provider client_id_list = %v, want [sts.amazonaws.com]", ids)
	}

	trust := map[string]string{
		"trust_branch":      "repo:example/orderledger:ref:refs/heads/main",
		"trust_environment": "repo:example/orderledger:environment:dev",
	}
	for name, sub := range trust {
		docs := m.blocks("data", "aws_iam_policy_document", name)
		if len(docs) != 1 {
			t.Fatalf("data.aws_iam_policy_document.%s is missing", name)
		}
		for _, p := range trustProblems(t, e, docs[0], sub) {
			t.Error(p)
		}
	}

	for role, doc := range map[string]string{"publish": "trust_branch", "plan": "trust_branch", "apply": "trust_environment"} {
		r := m.resource(t, "aws_iam_role", role)
		if !references(r.Body.Attributes["assume_role_policy"].Expr, "data.aws_iam_policy_document."+doc) {
			t.Errorf("aws_iam_role.%s must trust data.aws_iam_policy_document.%s", role, doc)
		}
		name := e.attr(t, r, "name", nil)
		if !name.IsKnown() || !strings.HasPrefix(name.AsString(), "ci-dev-") {
			t.Errorf("aws_iam_role.%s name = %#v: CI roles are named ci-<env>-*, outside the <env>-* roles the apply role manages", role, name)
		}
	}

	// The apply role's IAM rights stop at the environment's own roles.
	for _, doc := range m.blocks("data", "aws_iam_policy_document") {
		for _, st := range child(doc, "statement") {
			actions, _ := stringList(e.attr(t, st, "actions", nil))
			if !slices.ContainsFunc(actions, func(a string) bool {
				return strings.HasPrefix(a, "iam:") && !strings.HasPrefix(a, "iam:Get") && !strings.HasPrefix(a, "iam:List")
			}) {
				continue
			}
			res, ok := stringList(e.attr(t, st, "resources", nil))
			if !ok || len(res) == 0 {
				t.Errorf("%s: IAM changes need known resources", doc.Labels[1])
				continue
			}
			for _, r := range res {
				if !strings.Contains(r, ":role/dev-") && !strings.Contains(r, ":role/aws-service-role/") {
					t.Errorf("%s: IAM changes allowed on %s, want the environment's roles only", doc.Labels[1], r)
				}
			}
		}
	}

	env := mustParseModule(t, "environments/dev")
	calls := env.blocks("module", "github_oidc")
	if len(calls) != 1 {
		t.Fatal("environments/dev does not call module github_oidc")
	}
	if a := calls[0].Body.Attributes["count"]; a == nil || !references(a.Expr, "var.github_repository") {
		t.Error("module.github_oidc: count must follow var.github_repository (no CI roles without a repository)")
	}
	if a := calls[0].Body.Attributes["ecr_repository_arn"]; a == nil || !references(a.Expr, "module.container.ecr_repository_arn") {
		t.Error("module.github_oidc: ecr_repository_arn must be module.container.ecr_repository_arn")
	}
}

// TestGitHubOIDCTrustCatchesMistakes proves the trust check fails on each
// way a trust policy can let in more than it should.
func TestGitHubOIDCTrustCatchesMistakes(t *testing.T) {
	t.Parallel()
	const sub = "repo:example/orderledger:ref:refs/heads/main"
	stmt := func(action, test, aud, subject string) string {
		return `data "aws_iam_policy_document" "trust" {
  statement {
    actions = ["` + action + `"]
    principals {
      type        = "Federated"
      identifiers = [local.provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["` + aud + `"]
    }
    condition {
      test     = "` + test + `"
      variable = "token.actions.githubusercontent.com:sub"
      values   = ["` + subject + `"]
    }
  }
}`
	}
	for name, c := range map[string]struct {
		src  string
		want int
	}{
		"right":             {stmt("sts:AssumeRoleWithWebIdentity", "StringEquals", "sts.amazonaws.com", sub), 0},
		"any branch":        {stmt("sts:AssumeRoleWithWebIdentity", "StringLike", "sts.amazonaws.com", "repo:example/orderledger:*"), 3},
		"other branch":      {stmt("sts:AssumeRoleWithWebIdentity", "StringEquals", "sts.amazonaws.com", "repo:example/orderledger:ref:refs/heads/dev"), 1},
		"other repository":  {stmt("sts:AssumeRoleWithWebIdentity", "StringEquals", "sts.amazonaws.com", "repo:someone/orderledger:ref:refs/heads/main"), 1},
		"any audience":      {stmt("sts:AssumeRoleWithWebIdentity", "StringEquals", "*", sub), 1},
		"plain assume role": {stmt("sts:AssumeRole", "StringEquals", "sts.amazonaws.com", sub), 1},
		"no sub condition":  {strings.Replace(stmt("sts:AssumeRoleWithWebIdentity", "StringEquals", "sts.amazonaws.com", sub), ":sub", ":actor", 1), 1},
		"account principal": {strings.Replace(strings.Replace(stmt("sts:AssumeRoleWithWebIdentity", "StringEquals", "sts.amazonaws.com", sub), `"Federated"`, `"AWS"`, 1), "local.provider_arn", `"*"`, 1), 1},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			m, err := parseSource("trust.tf", c.src)
			if err != nil {
				t.Fatal(err)
			}
			e, err := newEvaluator(m, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := trustProblems(t, e, m.blocks("data", "aws_iam_policy_document", "trust")[0], sub); len(got) != c.want {
				t.Errorf("want %d problems, got %q", c.want, got)
			}
		})
	}
}
