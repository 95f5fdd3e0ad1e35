/**
 * A strict check of Kubernetes manifests against the object schemas, offline: the per-kind
 * models of `kubernetes-models` (generated from Kubernetes' OpenAPI document) in two ways, since
 * neither alone is strict:
 * - their validators (types, int32/quantity formats, required fields), which accept unknown keys;
 * - their TypeScript interfaces, against which the TypeScript compiler type-checks each object as
 *   a literal: an unknown key anywhere is an excess-property error, as `kubectl apply` with
 *   strict field validation would reject it (the compiler names the first one per object).
 */
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type * as TS from 'typescript'

const require = createRequire(import.meta.url)
// required, not imported: an ES import of the 9 MB CommonJS compiler costs ~2 s more under tsx
const ts = require('typescript') as typeof TS
const MODELS = dirname(require.resolve('kubernetes-models/package.json'))

export interface KubeObject { readonly apiVersion?: unknown; readonly kind?: unknown; readonly [key: string]: unknown }

/** kubernetes-models' module of one kind: `<group>/<version>/<Kind>`, core "v1" without a group. */
function modelModule(apiVersion: string, kind: string): string {
  return `kubernetes-models/${apiVersion}/${kind}`
}

const label = (doc: KubeObject, i: number): string =>
  `document ${i + 1} (${String(doc.kind)} ${String((doc.metadata as { name?: unknown } | undefined)?.name ?? '?')})`

/** Every schema problem of the objects, each naming its object; empty when all conform. */
export async function schemaProblems(docs: readonly KubeObject[]): Promise<string[]> {
  const problems: string[] = []
  for (const [i, doc] of docs.entries()) {
    if (typeof doc.apiVersion !== 'string' || typeof doc.kind !== 'string') {
      problems.push(`${label(doc, i)}: apiVersion and kind must be strings`)
      continue
    }
    let Model: (new (data: unknown) => { validate(): void }) | undefined
    try {
      Model = (await import(modelModule(doc.apiVersion, doc.kind)))[doc.kind]
    } catch { /* unknown apiVersion */ }
    if (!Model) {
      problems.push(`${label(doc, i)}: no ${doc.kind} in ${doc.apiVersion}`)
      continue
    }
    try {
      new Model(doc).validate()
    } catch (err) {
      problems.push(`${label(doc, i)}: ${(err as Error).message}`)
    }
  }
  problems.push(...typeProblems(docs))
  return problems
}

// Each check reuses the unchanged declaration files the last one parsed.
let previous: TS.Program | undefined

/** Type-checks each object as a literal of its kind's interface, with excess-property checks. */
function typeProblems(docs: readonly KubeObject[]): string[] {
  const lines: string[] = []
  const owner: number[] = []
  const emit = (text: string, doc: number): void => {
    for (const line of text.split('\n')) { lines.push(line); owner.push(doc) }
  }
  docs.forEach((doc, i) => {
    emit(`import type { I${String(doc.kind)} as T${i} } from '${modelModule(String(doc.apiVersion), String(doc.kind))}'`, i)
    emit(`export const doc${i}: T${i} = ${JSON.stringify(doc, null, 2)}`, i)
  })
  const file = join(MODELS, '__manifest_check__.ts')
  const source = lines.join('\n')
  const options: TS.CompilerOptions = {
    strict: true, noEmit: true, skipLibCheck: true, types: [], lib: ['lib.es5.d.ts'],
    module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022,
  }
  const host = ts.createCompilerHost(options)
  const read = host.readFile.bind(host)
  const exists = host.fileExists.bind(host)
  const getSource = host.getSourceFile.bind(host)
  host.readFile = (f) => (f === file ? source : read(f))
  host.fileExists = (f) => f === file || exists(f)
  host.getSourceFile = (f, lang, onError) => (f === file ? ts.createSourceFile(f, source, lang) : getSource(f, lang, onError))
  const program = ts.createProgram([file], options, host, previous)
  previous = program
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const message = ts.flattenDiagnosticMessageText(d.messageText, ' ')
    if (d.file?.fileName !== file || d.start === undefined) return `schema check: ${message}`
    const line = d.file.getLineAndCharacterOfPosition(d.start).line
    const i = owner[line] as number
    return `${label(docs[i] as KubeObject, i)}: at \`${(lines[line] as string).trim()}\`: ${message}`
  })
}
