package workflowcheck_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"

	"github.com/orderledger/orderledger/internal/workflowcheck"
)

// repoRoot is the repository this package sits in.
const repoRoot = "../.."

// TestRepositoryWorkflows checks the repository's own workflows: no problem,
// and the jobs the deploy depends on are there to be checked.
func TestRepositoryWorkflows(t *testing.T) {
	t.Parallel()
	files, problems, err := workflowcheck.Repository(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	for _, want := range []string{"ci.yml", "deploy.yml"} {
		if !slices.Contains(names, want) {
			t.Errorf("%s/.github/workflows/%s is missing (found %v)", repoRoot, want, names)
		}
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// TestGoodFixture proves the checks accept every form they understand when it
// is written right (make flags and variables, -C, bash -c, sudo, env,
// working directories, local and remote reusable workflows, digests).
func TestGoodFixture(t *testing.T) {
	t.Parallel()
	problems, err := workflowcheck.File("testdata/repo", "testdata/workflows/good.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// TestBadFixtures proves each check fails: every fixture breaks one rule,
// once, on a known line.
func TestBadFixtures(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		file string
		line int
		job  string
		want string
	}{
		{"no_top_permissions.yml", 0, "", "no top-level permissions"},
		{"top_permissions_granted.yml", 3, "", "top-level permissions grant something"},
		{"job_without_permissions.yml", 11, "test", "no permissions"},
		{"called_workflow_without_permissions.yml", 5, "call", "no permissions"},
		{"action_tag.yml", 10, "build", `actions/checkout@v7.0.1 is not pinned to a full 40-hex commit SHA`},
		{"action_branch.yml", 10, "build", `docker/build-push-action@master is not pinned`},
		{"action_short_sha.yml", 10, "build", `actions/checkout@3d3c42e is not pinned`},
		{"action_no_version_comment.yml", 10, "build", "belongs in a comment"},
		{"remote_workflow_tag.yml", 8, "call", "reusable.yml@v1 is not pinned"},
		{"docker_tag.yml", 9, "build", "docker://alpine:3.20 is not pinned to a sha256 digest"},
		{"missing_local_action.yml", 9, "build", "local action ./actions/goodbye has no action.yml"},
		{"missing_local_workflow.yml", 7, "call", "reusable workflow ./.github/workflows/deploy.yml does not exist"},
		{"missing_make_target.yml", 12, "build", "calls make deploy, which is not a target of the Makefile"},
		{"missing_make_target_dir.yml", 10, "build", "calls make build, which is not a target of the Makefile"},
		{"missing_script_bash.yml", 10, "build", "calls scripts/test.sh, which does not exist"},
		{"missing_script_direct.yml", 14, "build", "calls .ci/run-all, which does not exist"},
		{"missing_script_workdir.yml", 10, "build", "calls sub/scripts/ok.sh, which does not exist"},
		{"script_not_executable.yml", 10, "build", "calls scripts/noexec.sh directly, which is not executable"},
		{"aws_keys_input.yml", 14, "deploy", "configure-aws-credentials gets aws-secret-access-key"},
		{"aws_keys_env.yml", 10, "deploy", "sets AWS_ACCESS_KEY_ID"},
		{"aws_no_role.yml", 11, "deploy", "configure-aws-credentials without role-to-assume"},
		{"aws_no_id_token.yml", 10, "deploy", "needs `id-token: write`"},
	} {
		t.Run(c.file, func(t *testing.T) {
			t.Parallel()
			problems, err := workflowcheck.File("testdata/repo", filepath.Join("testdata/workflows", c.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(problems) != 1 {
				t.Fatalf("want one problem, got %d: %v", len(problems), problems)
			}
			p := problems[0]
			if !strings.Contains(p.Message, c.want) || p.Line != c.line || p.Job != c.job {
				t.Errorf("got %s (line %d, job %q), want %q on line %d, job %q", p, p.Line, p.Job, c.want, c.line, c.job)
			}
		})
	}
}

// TestRepositoryReportsBadWorkflows proves Repository reads every workflow
// of .github/workflows (.yml and .yaml) and reports their problems.
func TestRepositoryReportsBadWorkflows(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dir := filepath.Join(root, ".github", "workflows")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{
		"testdata/repo/Makefile":                         filepath.Join(root, "Makefile"),
		"testdata/workflows/missing_make_target.yml":     filepath.Join(dir, "a.yml"),
		"testdata/workflows/job_without_permissions.yml": filepath.Join(dir, "b.yaml"),
	} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, problems, err := workflowcheck.Repository(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || len(problems) != 2 {
		t.Fatalf("files %v, problems %v; want 2 files and 2 problems", files, problems)
	}
	if !strings.Contains(problems[0].String(), "a.yml:12: job build: calls make deploy") || !strings.Contains(problems[1].String(), "b.yaml:11: job test: no permissions") {
		t.Errorf("problems = %v", problems)
	}
}

// TestMakeWithoutMakefile proves a make call fails where there is no Makefile.
func TestMakeWithoutMakefile(t *testing.T) {
	t.Parallel()
	problems, err := workflowcheck.File("testdata/repo/sub", "testdata/workflows/missing_make_target_dir.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 1 || !strings.Contains(problems[0].Message, "make: ") && !strings.Contains(problems[0].Message, "no Makefile") {
		t.Errorf("want one problem saying there is no Makefile, got %v", problems)
	}
}

// TestCommands checks how run scripts are split into commands.
func TestCommands(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		script string
		want   []string // "line:name arg..."
	}{
		{"make test", []string{"1:make test"}},
		{"make a && make b || c; d | e", []string{"1:make a", "1:make b", "1:c", "1:d", "1:e"}},
		{"A=1 B=2 env C=3 scripts/x.sh --f", []string{"1:scripts/x.sh --f"}},
		{"if scripts/ok.sh >/dev/null 2>&1; then sudo make x; fi", []string{"1:scripts/ok.sh >/dev/null 2>&1", "1:make x", "1:fi"}},
		{"echo 'a; make b' \"c && d\"", []string{"1:echo a; make b c && d"}},
		{"one \\\n  two\nthree # make x\n# make y", []string{"1:one two", "3:three"}},
		{"x=$(scripts/y.sh a)", []string{"1:scripts/y.sh a"}},
		{"printf '%s\\n' 'a\nb' > f\nnext", []string{"1:printf %s\\n a\nb > f", "3:next"}},
	} {
		var got []string
		for _, cmd := range workflowcheck.Commands(c.script) {
			got = append(got, strings.TrimSpace(strings.Join(append([]string{strconv.Itoa(cmd.Line) + ":" + cmd.Name}, cmd.Args...), " ")))
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("Commands(%q)\n got %q\nwant %q", c.script, got, c.want)
		}
	}
}

// TestDeployWorkflow checks what the deploy workflow promises beyond the
// rules: one deploy at a time, never cancelled halfway, and terraform apply
// only in a job of the protected environment the apply role trusts.
func TestDeployWorkflow(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile(filepath.Join(repoRoot, workflowcheck.WorkflowsDir, "deploy.yml"))
	if err != nil {
		t.Fatal(err)
	}
	wf, errs := actionlint.Parse(src)
	if len(errs) > 0 {
		t.Fatal(errs[0])
	}
	c := wf.Concurrency
	if c == nil || c.Group == nil || c.Group.Value == "" || c.Group.ContainsExpression() {
		t.Fatal("deploy.yml: a fixed workflow-level concurrency group is required, so two deploys never overlap")
	}
	if c.CancelInProgress == nil || c.CancelInProgress.Value || c.CancelInProgress.Expression != nil {
		t.Error("deploy.yml: cancel-in-progress must be false: a deploy is never cancelled halfway")
	}
	applies := 0
	for id, j := range wf.Jobs {
		for _, s := range j.Steps {
			run, ok := s.Exec.(*actionlint.ExecRun)
			if !ok || run.Run == nil {
				continue
			}
			for _, cmd := range workflowcheck.Commands(run.Run.Value) {
				if cmd.Name != "terraform" || !slices.Contains(cmd.Args, "apply") {
					continue
				}
				applies++
				if j.Environment == nil || j.Environment.Name == nil || j.Environment.Name.Value != "dev" {
					t.Errorf("deploy.yml: job %s runs terraform apply outside the protected environment dev", id)
				}
			}
		}
	}
	if applies != 1 {
		t.Errorf("deploy.yml: %d terraform apply commands, want 1", applies)
	}
}
