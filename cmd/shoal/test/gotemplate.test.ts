import test from 'ava';
import { TemplateError, executeTemplate as x } from '../src/format/gotemplate.js';

// Go text/template semantics (the cases Docker users write), checked against what Go prints.

const svc = {
  ID: 'abc123', Spec: { Name: 'web', Labels: { b: '2', a: '1' }, TaskTemplate: { ContainerSpec: { Image: 'nginx:1', Env: ['A=1', 'B=2'] } }, Mode: { Replicated: { Replicas: 3 } } },
  Endpoint: { Ports: [{ PublishedPort: 8080, TargetPort: 80 }] },
};

test('fields, json, whole dot, missing fields', (t) => {
  t.is(x('{{.Spec.Name}}', svc), 'web');
  t.is(x('{{.Spec.TaskTemplate.ContainerSpec.Image}}', svc), 'nginx:1');
  t.is(x('{{json .Endpoint}}', svc), '{"Ports":[{"PublishedPort":8080,"TargetPort":80}]}');
  t.is(x('{{.Nope}}', svc), '<no value>');
  t.is(x('{{.Spec.Labels}}', svc), 'map[a:1 b:2]');
  t.is(x('{{.Spec.TaskTemplate.ContainerSpec.Env}}', svc), '[A=1 B=2]');
  t.is(x('{{.}}', 'plain'), 'plain');
  t.is(x('{{.spec.name}}', { spec: { name: 'camel' } }), 'camel');
  t.is(x('{{.Spec.Name}}', { spec: { name: 'camel' } }), 'camel', 'PascalCase finds camelCase');
});

test('range over lists, maps (key order), integers; $i, $v; else; break and continue', (t) => {
  t.is(x('{{range .Spec.TaskTemplate.ContainerSpec.Env}}[{{.}}]{{end}}', svc), '[A=1][B=2]');
  t.is(x('{{range $k, $v := .Spec.Labels}}{{$k}}={{$v}};{{end}}', svc), 'a=1;b=2;');
  t.is(x('{{range $i, $e := .}}{{$i}}:{{$e}} {{end}}', ['x', 'y']), '0:x 1:y ');
  t.is(x('{{range .}}x{{else}}empty{{end}}', []), 'empty');
  t.is(x('{{range 3}}{{.}}{{end}}', null), '012');
  t.is(x('{{range .}}{{if eq . 2}}{{continue}}{{end}}{{if eq . 4}}{{break}}{{end}}{{.}}{{end}}', [1, 2, 3, 4, 5]), '13');
  t.is(x('{{range .Endpoint.Ports}}{{.PublishedPort}}->{{.TargetPort}}{{end}}', svc), '8080->80');
});

test('if / else if / else, with, and/or/not, comparisons', (t) => {
  const tpl = '{{if eq .N 1}}one{{else if eq .N 2}}two{{else}}many{{end}}';
  t.is(x(tpl, { N: 1 }), 'one');
  t.is(x(tpl, { N: 2 }), 'two');
  t.is(x(tpl, { N: 9 }), 'many');
  t.is(x('{{with .Spec.Mode.Replicated}}{{.Replicas}} replicas{{else}}global{{end}}', svc), '3 replicas');
  t.is(x('{{with .Spec.Mode.Global}}g{{else with .Spec.Mode.Replicated}}r{{.Replicas}}{{end}}', svc), 'r3');
  t.is(x('{{if and .A (not .B)}}yes{{end}}', { A: 1, B: 0 }), 'yes');
  t.is(x('{{or .A .B "dflt"}}', { A: '', B: 0 }), 'dflt');
  t.is(x('{{if lt .N 10}}small{{end}}{{if ge .N 10}}big{{end}}', { N: 12 }), 'big');
  t.is(x('{{if ne .S "x"}}ne{{end}}', { S: 'y' }), 'ne');
  t.true(x('{{if .L}}t{{else}}f{{end}}', { L: [] }) === 'f' && x('{{if .M}}t{{else}}f{{end}}', { M: {} }) === 'f');
});

test('pipelines, variables, parenthesized calls, Docker functions', (t) => {
  t.is(x('{{.Spec.Name | upper}}', svc), 'WEB');
  t.is(x('{{$n := .Spec.Name}}{{$n}}-{{$n | len}}', svc), 'web-3');
  t.is(x('{{$x := 1}}{{range .}}{{$x = .}}{{end}}{{$x}}', [5, 6]), '6');
  t.is(x('{{join .Spec.TaskTemplate.ContainerSpec.Env ","}}', svc), 'A=1,B=2');
  t.is(x('{{index (split "a:b:c" ":") 1}}', null), 'b');
  t.is(x('{{index .Spec.Labels "a"}}', svc), '1');
  t.is(x('{{title "hello world"}} {{lower "ABC"}} {{truncate "abcdef" 3}} [{{pad "x" 1 2}}] [{{pad "" 1 1}}]', null), 'Hello World abc abc [ x  ] []');
  t.is(x('{{printf "%s:%d %5s|%-4s|%05d %q %v %t" "a" 7 "r" "l" 42 "q" 1.5 true}}', null), 'a:7     r|l   |00042 "q" 1.5 true');
  t.is(x('{{println "a" 1}}', null), 'a 1\n');
  t.is(x('{{print "a" "b" 1 2}}', null), 'ab1 2');
  t.is(x('{{(index .Endpoint.Ports 0).TargetPort}}', svc), '80');
  t.is(x('{{slice "abcdef" 1 3}} {{len .Spec.Labels}}', svc), 'bc 2');
  t.is(x('{{html "<a&b>"}} {{urlquery "a b"}}', null), '&lt;a&amp;b&gt; a%20b');
});

test('trim markers, comments, raw strings, define/template', (t) => {
  t.is(x('a  {{- "b" -}}  c', null), 'abc');
  t.is(x('a {{/* a comment */}}b', null), 'a b');
  t.is(x('{{`raw \\n`}}', null), 'raw \\n');
  t.is(x('{{define "T"}}<{{.}}>{{end}}{{template "T" .Spec.Name}}', svc), '<web>');
  t.is(x('{{block "B" .}}[{{.}}]{{end}}', 'z'), '[z]');
});

test('errors are one line and name the fix', (t) => {
  for (const [tpl, re] of [
    ['{{.A', /unclosed action/],
    ['{{if .A}}x', /has no \{\{end\}\}/],
    ['{{end}}', /unexpected \{\{end\}\}/],
    ['{{nosuch .A}}', /function "nosuch" not defined/],
    ['{{$undef}}', /undefined variable \$undef/],
    ['{{lt 1 "a"}}', /incompatible types/],
  ] as const) {
    const e = t.throws(() => x(tpl, { A: 1 }), { instanceOf: TemplateError });
    t.regex(e!.message, re, tpl);
    t.false(e!.message.includes('\n'));
  }
});
