#!/usr/bin/env node
// `npm run lint:functions`: no function in src/ over MAX lines unless a comment in the three lines
// above it says why ("Long by design: ..."). Long functions were where the old god files hid
// their coupling (docs/ARCHITECTURE.md). Plain JS so it runs before the build.
import fs from 'node:fs'
import path from 'node:path'
import ts from 'typescript'

const MAX = Number(process.argv[2] ?? 120)
const root = process.argv[3] ?? 'src'
const files = []
const walk = (dir) => {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) walk(p)
    else if (p.endsWith('.ts')) files.push(p)
  }
}
walk(root)

const nameOf = (n) => n.name?.getText?.() ??
  (ts.isVariableDeclaration(n.parent) || ts.isPropertyAssignment(n.parent) ? n.parent.name.getText() : '<anonymous>')

const long = []
for (const file of files) {
  const text = fs.readFileSync(file, 'utf8')
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
  const lines = text.split('\n')
  const visit = (n) => {
    if (ts.isFunctionDeclaration(n) || ts.isFunctionExpression(n) || ts.isArrowFunction(n) || ts.isMethodDeclaration(n) || ts.isConstructorDeclaration(n)) {
      const first = sf.getLineAndCharacterOfPosition(n.getStart()).line + 1
      const last = sf.getLineAndCharacterOfPosition(n.getEnd()).line + 1
      const justified = /Long by design:/.test(lines.slice(Math.max(0, first - 4), first - 1).join('\n'))
      if (last - first + 1 > MAX && !justified) long.push(`${file}:${first} ${nameOf(n)} is ${last - first + 1} lines`)
    }
    ts.forEachChild(n, visit)
  }
  visit(sf)
}
if (long.length > 0) {
  process.stderr.write(`functions over ${MAX} lines (split them, or say why in a "Long by design:" comment above):\n  ${long.join('\n  ')}\n`)
  process.exit(1)
}
process.stdout.write(`no function in ${root}/ over ${MAX} lines (${files.length} files)\n`)
