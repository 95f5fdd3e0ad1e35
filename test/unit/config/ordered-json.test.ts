import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseOrderedJson, toPlain } from '../../../src/config/ordered-json.ts'

test('agrees with JSON.parse on ordinary documents', () => {
  const docs = ['{"a":[1,2.5,-3e2,{"b":null}],"c":"x\\u00e9\\n","d":true,"e":false}', '[]', '{}', '"s"', '0', ' [ 1 , { } ] ']
  for (const d of docs) assert.deepEqual(toPlain(parseOrderedJson(d)), JSON.parse(d), d)
})

test('keeps duplicate keys in order and number text', () => {
  const v = parseOrderedJson('{"k":1,"K":2.0,"k":3}')
  assert.deepEqual(v, { kind: 'object', entries: [['k', { kind: 'number', text: '1', value: 1 }], ['K', { kind: 'number', text: '2.0', value: 2 }], ['k', { kind: 'number', text: '3', value: 3 }]] })
})

test('rejects what JSON.parse rejects', () => {
  for (const d of ['{', '{"a"}', '{"a":1,}', '[1,]', '01', '"\t"', "{'a':1}", 'nul', '1 2', '{"a":1}}', '+1', '.5']) {
    assert.throws(() => JSON.parse(d), SyntaxError, `JSON.parse accepted ${d}`)
    assert.throws(() => parseOrderedJson(d), /invalid JSON at offset \d+/, d)
  }
})

test('bounds nesting depth', () => {
  assert.throws(() => parseOrderedJson('['.repeat(100) + ']'.repeat(100)), /nesting too deep/)
})
