import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseYaml, YamlSyntaxError } from '../../../../src/subnet/kube/kubeconfig-yaml.ts'

test('kubectl-style kubeconfig: same-indent sequences, "- key:" items, {} and quoted scalars', () => {
  const doc = parseYaml(`apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: TFMwdA==
    server: https://10.0.0.1:6443   # the control plane
  name: k8s
contexts:
- context:
    cluster: k8s
    user: "admin"
    namespace: 'kube-system'
  name: admin@k8s
current-context: admin@k8s
kind: Config
preferences: {}
users:
- name: admin
  user:
    token: "a\\tb\\u00e9"
    password: 'it''s'
    empty:
    tilde: ~
`)
  assert.deepEqual(JSON.parse(JSON.stringify(doc)), {
    apiVersion: 'v1',
    clusters: [{ cluster: { 'certificate-authority-data': 'TFMwdA==', server: 'https://10.0.0.1:6443' }, name: 'k8s' }],
    contexts: [{ context: { cluster: 'k8s', user: 'admin', namespace: 'kube-system' }, name: 'admin@k8s' }],
    'current-context': 'admin@k8s',
    kind: 'Config',
    preferences: {},
    users: [{ name: 'admin', user: { token: 'a\tb\u00e9', password: "it's", empty: null, tilde: null } }],
  })
})

test('indented sequences, nested sequences, flow collections, document marker and comments', () => {
  const doc = parseYaml(`---
# comment
list:
  - a
  - - b
    - c
  -
    k: v
flow: [x, "y, z", {a: 1, b: [2]}]
url: http://h:1/p#frag
`)
  assert.deepEqual(JSON.parse(JSON.stringify(doc)), {
    list: ['a', ['b', 'c'], { k: 'v' }],
    flow: ['x', 'y, z', { a: '1', b: ['2'] }],
    url: 'http://h:1/p#frag',
  })
})

test('block scalars (| |- >) and multi-line plain and quoted scalars', () => {
  const doc = parseYaml(`lit: |
  line 1
    indented

  line 3
strip: |-
  only
folded: >
  a
  b

  c
plain: one
  two
quoted: "x
  y"
end: 1
`) as Record<string, unknown>
  assert.equal(doc['lit'], 'line 1\n  indented\n\nline 3\n')
  assert.equal(doc['strip'], 'only')
  assert.equal(doc['folded'], 'a b\nc\n')
  assert.equal(doc['plain'], 'one two')
  assert.equal(doc['quoted'], 'x y')
  assert.equal(doc['end'], '1')
})

test('refused YAML names the line', () => {
  const cases: [string, RegExp][] = [
    ['a: &anchor x\nb: *anchor\n', /line 1: anchors, aliases and tags/],
    ['a: 1\na: 2\n', /line 2: duplicate key "a"/],
    ['a: 1\n---\nb: 2\n', /line 2: only one YAML document/],
    ['a:\n\tb: 1\n', /line 2: tabs/],
    ['a: "open\n', /line 1: unterminated quoted string/],
    ['a:\n  b: 1\n   c: 2\n', /line 3: bad indentation/],
    ['a: [1, 2\n', /line 1: flow collections must fit on one line/],
    ['a: "\\q"\n', /line 1: unknown escape/],
    ['- a\nb: 1\n', /line 2: unexpected content/],
  ]
  for (const [text, message] of cases) {
    assert.throws(() => parseYaml(text), (err: unknown) => err instanceof YamlSyntaxError && message.test(err.message), text)
  }
})

test('"__proto__" is an ordinary key', () => {
  const doc = parseYaml('__proto__: x\n') as Record<string, unknown>
  assert.equal(Object.getOwnPropertyDescriptor(doc, '__proto__')?.value, 'x')
  assert.equal(({} as Record<string, unknown>)['x'], undefined)
})
