// Package workflowcheck checks the repository's GitHub Actions workflows for
// what actionlint cannot know about this repository:
//
//   - every workflow sets `permissions: {}` at the top and every job sets its
//     own `permissions`, so no job runs with the token's defaults;
//   - every action and reusable workflow from another repository is pinned to
//     a full 40-hex commit SHA with its version in a comment on the same line
//     (`uses: actions/checkout@<sha> # v7.0.1`), and a docker:// image to a
//     sha256 digest; a local action or workflow (`./...`) exists;
//   - every `make` target a `run:` script calls is a target of the Makefile,
//     and every script it calls by path (`bash scripts/x.sh`, `.ci/run`)
//     exists, and is executable when called directly;
//   - AWS access is OpenID Connect only: configure-aws-credentials gets a
//     role-to-assume and no access keys, its job has `id-token: write`, and
//     no env sets AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or
//     AWS_SESSION_TOKEN.
//
// The run scripts are read as simple shell: commands are the words at the
// start of each command (after `&&`, `||`, `;`, `|`, `if`, `then`, `sudo`,
// variable assignments and the like). A word holding an expression or a
// variable (`${{ ... }}`, `$X`) cannot be resolved and is not checked, and a
// command built at run time (eval, functions) is not seen.
package workflowcheck

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/rhysd/actionlint"
)

// Problem is one rule a workflow breaks.
type Problem struct {
	File    string // the workflow file as given
	Line    int    // 1-based; 0 when the whole file is concerned
	Job     string // the job's ID; empty for the workflow itself
	Message string
}

func (p Problem) String() string {
	where := p.File
	if p.Line > 0 {
		where = fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	if p.Job != "" {
		return fmt.Sprintf("%s: job %s: %s", where, p.Job, p.Message)
	}
	return fmt.Sprintf("%s: %s", where, p.Message)
}

// WorkflowsDir is where GitHub reads a repository's workflows.
const WorkflowsDir = ".github/workflows"

// Repository checks every workflow under root's .github/workflows against
// root's Makefile and files. It returns the workflow files it read.
func Repository(root string) (files []string, problems []Problem, err error) {
	for _, pattern := range []string{"*.yml", "*.yaml"} {
		m, err := filepath.Glob(filepath.Join(root, WorkflowsDir, pattern))
		if err != nil {
			return nil, nil, err
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	for _, f := range files {
		ps, err := File(root, f)
		if err != nil {
			return nil, nil, err
		}
		problems = append(problems, ps...)
	}
	return files, problems, nil
}

// File checks the workflow at file; root is the repository the workflow runs
// in (its Makefile, scripts and local actions).
func File(root, file string) ([]Problem, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("workflowcheck: %w", err)
	}
	wf, errs := actionlint.Parse(src)
	if len(errs) > 0 {
		return nil, fmt.Errorf("workflowcheck: %s:%d: %s", file, errs[0].Line, errs[0].Message)
	}
	targets, err := makeTargets(filepath.Join(root, "Makefile"))
	if err != nil {
		return nil, err
	}
	c := &checker{root: root, file: file, lines: bytes.Split(src, []byte("\n")), targets: targets}
	c.workflow(wf)
	sort.SliceStable(c.problems, func(i, j int) bool { return c.problems[i].Line < c.problems[j].Line })
	return c.problems, nil
}

type checker struct {
	root     string
	file     string
	lines    [][]byte
	targets  map[string]bool // nil when the repository has no Makefile
	problems []Problem
}

func (c *checker) add(line int, job, format string, args ...any) {
	c.problems = append(c.problems, Problem{File: c.file, Line: line, Job: job, Message: fmt.Sprintf(format, args...)})
}

func (c *checker) workflow(wf *actionlint.Workflow) {
	switch p := wf.Permissions; {
	case p == nil:
		c.add(0, "", "no top-level permissions: set `permissions: {}` and grant each job its own")
	case p.All != nil || len(p.Scopes) > 0:
		c.add(p.Pos.Line, "", "top-level permissions grant something: set `permissions: {}` and grant each job its own")
	}
	c.env("", wf.Env)
	workdir := ""
	if wf.Defaults != nil && wf.Defaults.Run != nil && wf.Defaults.Run.WorkingDirectory != nil {
		workdir = wf.Defaults.Run.WorkingDirectory.Value
	}
	ids := make([]string, 0, len(wf.Jobs))
	for id := range wf.Jobs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		c.job(id, wf.Jobs[id], workdir)
	}
}

func (c *checker) job(id string, j *actionlint.Job, workdir string) {
	if j.Permissions == nil {
		c.add(j.Pos.Line, id, "no permissions: set the job's own `permissions:` (`{}` when it needs none)")
	}
	if j.WorkflowCall != nil && j.WorkflowCall.Uses != nil {
		c.uses(id, j.WorkflowCall.Uses)
	}
	if j.Defaults != nil && j.Defaults.Run != nil && j.Defaults.Run.WorkingDirectory != nil {
		workdir = j.Defaults.Run.WorkingDirectory.Value
	}
	c.env(id, j.Env)
	for _, s := range j.Steps {
		c.env(id, s.Env)
		switch e := s.Exec.(type) {
		case *actionlint.ExecAction:
			c.uses(id, e.Uses)
			c.awsCredentials(id, j, e)
		case *actionlint.ExecRun:
			dir := workdir
			if e.WorkingDirectory != nil {
				dir = e.WorkingDirectory.Value
			}
			if e.Run != nil {
				c.run(id, e.Run, dir)
			}
		}
	}
}

// awsKeys are the variables that hold long-lived (or copied) AWS credentials.
var awsKeys = []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}

// env checks an env: section for AWS credentials.
func (c *checker) env(job string, env *actionlint.Env) {
	if env == nil {
		return
	}
	for _, v := range env.Vars {
		if v.Name != nil && slices.Contains(awsKeys, strings.ToUpper(v.Name.Value)) {
			c.add(v.Name.Pos.Line, job, "sets %s: AWS access is through OIDC (configure-aws-credentials with role-to-assume)", v.Name.Value)
		}
	}
}

// awsCredentials checks a step that uses aws-actions/configure-aws-credentials.
func (c *checker) awsCredentials(job string, j *actionlint.Job, e *actionlint.ExecAction) {
	if e.Uses == nil || !strings.HasPrefix(strings.ToLower(e.Uses.Value), "aws-actions/configure-aws-credentials@") {
		return
	}
	line := e.Uses.Pos.Line
	for _, key := range []string{"aws-access-key-id", "aws-secret-access-key", "aws-session-token"} {
		if in, ok := e.Inputs[key]; ok {
			c.add(in.Name.Pos.Line, job, "configure-aws-credentials gets %s: AWS access is through OIDC, with role-to-assume and no keys", key)
		}
	}
	if _, ok := e.Inputs["role-to-assume"]; !ok {
		c.add(line, job, "configure-aws-credentials without role-to-assume: name the role the job assumes through OIDC")
	}
	if p := j.Permissions; p != nil {
		if scope, ok := p.Scopes["id-token"]; !ok || scope.Value == nil || scope.Value.Value != "write" {
			c.add(line, job, "configure-aws-credentials needs `id-token: write` in the job's permissions (OIDC)")
		}
	}
}

var (
	fullSHA        = regexp.MustCompile(`^[0-9a-f]{40}$`)
	versionComment = regexp.MustCompile(`#\s*v?\d+(\.\d+)*\b`)
	imageDigest    = regexp.MustCompile(`@sha256:[0-9a-f]{64}$`)
)

// uses checks one `uses:` of a step or of a job calling a reusable workflow.
func (c *checker) uses(job string, u *actionlint.String) {
	if u == nil || u.ContainsExpression() {
		return
	}
	v, line := u.Value, u.Pos.Line
	switch {
	case strings.HasPrefix(v, "./"):
		p := filepath.Join(c.root, filepath.FromSlash(v))
		if strings.Contains(v, "/.github/workflows/") || strings.HasPrefix(v, "./.github/workflows/") {
			if _, err := os.Stat(p); err != nil {
				c.add(line, job, "reusable workflow %s does not exist", v)
			}
			return
		}
		if !exists(filepath.Join(p, "action.yml")) && !exists(filepath.Join(p, "action.yaml")) {
			c.add(line, job, "local action %s has no action.yml", v)
		}
	case strings.HasPrefix(v, "docker://"):
		if !imageDigest.MatchString(v) {
			c.add(line, job, "%s is not pinned to a sha256 digest", v)
		}
	default:
		at := strings.LastIndex(v, "@")
		if at < 0 {
			c.add(line, job, "%s names no version: pin it to a full commit SHA", v)
			return
		}
		if ref := v[at+1:]; !fullSHA.MatchString(ref) {
			c.add(line, job, "%s is not pinned to a full 40-hex commit SHA (%q is a tag, a branch or a short SHA)", v, ref)
			return
		}
		if !versionComment.Match(c.comment(line)) {
			c.add(line, job, "%s: the version the SHA stands for belongs in a comment on the same line (`# v1.2.3`)", v)
		}
	}
}

// comment returns the comment on line (1-based) of the workflow, if any.
func (c *checker) comment(line int) []byte {
	if line < 1 || line > len(c.lines) {
		return nil
	}
	l := c.lines[line-1]
	if i := bytes.Index(l, []byte(" #")); i >= 0 {
		return l[i+1:]
	}
	return nil
}

// run checks the commands of one run script; dir is its working directory
// relative to the repository root.
func (c *checker) run(job string, script *actionlint.String, dir string) {
	if strings.Contains(dir, "${{") {
		return
	}
	// The script starts on the line after `run: |` (block scalar) or on the
	// same line (plain scalar).
	first := script.Pos.Line
	if strings.Contains(script.Value, "\n") {
		first++
	}
	for _, cmd := range Commands(script.Value) {
		line := first + cmd.Line - 1
		switch {
		case cmd.Name == "make":
			c.make(job, line, dir, cmd.Args)
		case (cmd.Name == "bash" || cmd.Name == "sh") && len(cmd.Args) > 0:
			if s := scriptArg(cmd.Args); s != "" {
				c.script(job, line, dir, s, false)
			}
		case isPath(cmd.Name):
			c.script(job, line, dir, cmd.Name, true)
		}
	}
}

// scriptArg returns the script a `bash` or `sh` command runs, or "" when it
// runs a string (-c) or reads standard input.
func scriptArg(args []string) string {
	for _, a := range args {
		switch {
		case a == "-c" || a == "-s":
			return ""
		case strings.HasPrefix(a, "-"):
			continue
		default:
			return a
		}
	}
	return ""
}

// isPath reports whether a command word names a file in the repository.
func isPath(w string) bool {
	return strings.Contains(w, "/") && !strings.HasPrefix(w, "/") && !strings.HasPrefix(w, "~")
}

func (c *checker) script(job string, line int, dir, name string, direct bool) {
	if unresolved(name) {
		return
	}
	rel := path.Clean(path.Join(dir, name))
	if strings.HasPrefix(rel, "../") {
		return // outside the repository
	}
	info, err := os.Stat(filepath.Join(c.root, filepath.FromSlash(rel)))
	switch {
	case err != nil:
		c.add(line, job, "calls %s, which does not exist", rel)
	case info.IsDir():
		c.add(line, job, "calls %s, which is a directory", rel)
	case direct && info.Mode()&0o111 == 0:
		c.add(line, job, "calls %s directly, which is not executable (git update-index --chmod=+x, or run it with bash)", rel)
	}
}

func (c *checker) make(job string, line int, dir string, args []string) {
	targets := c.targets
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-C" || a == "-f" || a == "--directory" || a == "--file":
			if i+1 < len(args) {
				i++
				if unresolved(args[i]) {
					return
				}
				var err error
				if a == "-C" || a == "--directory" {
					dir = path.Join(dir, args[i])
					targets, err = makeTargets(filepath.Join(c.root, filepath.FromSlash(dir), "Makefile"))
				} else {
					targets, err = makeTargets(filepath.Join(c.root, filepath.FromSlash(path.Join(dir, args[i]))))
				}
				if err != nil {
					c.add(line, job, "make: %v", err)
					return
				}
			}
		case strings.HasPrefix(a, "-") || strings.Contains(a, "="):
			continue
		case unresolved(a):
			continue
		default:
			if targets == nil {
				c.add(line, job, "calls make %s, but there is no Makefile", a)
				return
			}
			if !targets[a] {
				c.add(line, job, "calls make %s, which is not a target of the Makefile", a)
			}
		}
	}
	if targets == nil {
		c.add(line, job, "calls make, but there is no Makefile")
	}
}

// unresolved reports whether a word depends on an expression or a variable.
func unresolved(w string) bool {
	return strings.Contains(w, "${{") || strings.Contains(w, "$")
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

var ruleLine = regexp.MustCompile(`^([^\s#:=][^:=]*?)\s*::?(?:[^=]|$)`)

// makeTargets returns the explicit targets of a Makefile (rule lines, not
// pattern rules), nil when the file does not exist.
func makeTargets(file string) (map[string]bool, error) {
	src, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("workflowcheck: %w", err)
	}
	targets := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(src))
	for sc.Scan() {
		m := ruleLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		for _, t := range strings.Fields(m[1]) {
			if !strings.Contains(t, "%") && !strings.Contains(t, "$") && !strings.HasPrefix(t, ".") {
				targets[t] = true
			}
		}
	}
	return targets, sc.Err()
}

// Command is one simple command of a run script.
type Command struct {
	Line int // 1-based line of the script the command starts on
	Name string
	Args []string
}

// prefixes are words after which the next word is the command.
var prefixes = []string{"if", "then", "else", "elif", "do", "while", "until", "!", "time", "sudo", "exec", "command", "nohup", "{", "("}

// Commands splits a run script into its simple commands, as a shell would
// read them: quotes, backslash-newlines and comments are understood;
// here-documents, functions and substitutions are not.
func Commands(script string) []Command {
	var (
		out     []Command
		cur     *Command
		word    strings.Builder
		inWord  bool
		line    = 1
		quote   rune
		runes   = []rune(script)
		started = line
	)
	endWord := func() {
		if !inWord {
			return
		}
		w := word.String()
		word.Reset()
		inWord = false
		if cur == nil {
			if slices.Contains(prefixes, w) || isAssignment(w) {
				return
			}
			if w == "env" {
				return
			}
			cur = &Command{Line: started, Name: w}
			return
		}
		cur.Args = append(cur.Args, w)
	}
	endCommand := func() {
		endWord()
		if cur != nil {
			out = append(out, *cur)
		}
		cur = nil
	}
	for i := 0; i < len(runes); i++ {
		r := runes[i]
		if quote != 0 {
			switch {
			case r == quote:
				quote = 0
			case r == '\\' && quote == '"' && i+1 < len(runes):
				i++
				word.WriteRune(runes[i])
			default:
				if r == '\n' {
					line++
				}
				word.WriteRune(r)
			}
			continue
		}
		switch {
		case r == '\\' && i+1 < len(runes) && runes[i+1] == '\n':
			i++
			line++
		case r == '\\' && i+1 < len(runes):
			i++
			word.WriteRune(runes[i])
			inWord = true
		case r == '\'' || r == '"':
			quote = r
			inWord = true
			if cur == nil && word.Len() == 0 {
				started = line
			}
		case r == '#' && !inWord:
			for i+1 < len(runes) && runes[i+1] != '\n' {
				i++
			}
		case r == '\n':
			endCommand()
			line++
		case r == '&' && (i > 0 && (runes[i-1] == '>' || runes[i-1] == '<') || i+1 < len(runes) && runes[i+1] == '>'):
			word.WriteRune(r) // a redirection: 2>&1, &>file
			inWord = true
		case r == ';' || r == '&' || r == '|' || r == '(' || r == ')':
			endCommand()
		case r == ' ' || r == '\t':
			endWord()
		default:
			if !inWord && cur == nil {
				started = line
			}
			word.WriteRune(r)
			inWord = true
		}
	}
	endCommand()
	return out
}

var assignment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

func isAssignment(w string) bool { return assignment.MatchString(w) }
