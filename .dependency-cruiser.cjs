/**
 * The layer rules of src/ (docs/ARCHITECTURE.md), checked by `npm run lint`.
 *
 * Each folder may import only folders of a lower layer; folders on one layer do not import each
 * other. Strict layers also rule out folder cycles. scripts/ and test/ may import anything;
 * nothing in src/ imports test/ or scripts/.
 */
const LAYERS = [
  ['util'],
  ['records'],
  ['contracts'],
  ['store', 'engine'],
  ['net', 'meta'],
  ['vote', 'trust'],
  ['bench', 'serving'],
  ['node'],
  ['testbed'],
  ['cli']
]

const rank = new Map(LAYERS.flatMap((folders, i) => folders.map(f => [f, i])))

const layerRules = [...rank].map(([folder, r]) => {
  const allowed = [...rank].filter(([f, fr]) => fr < r || f === folder).map(([f]) => f)
  return {
    name: `layer-${folder}`,
    severity: 'error',
    comment: `src/${folder} may import only ${allowed.filter(f => f !== folder).map(f => `src/${f}`).join(', ') || 'node built-ins and packages'} (docs/ARCHITECTURE.md)`,
    from: { path: `^src/${folder}/` },
    to: { path: '^src/', pathNot: `^src/(${allowed.join('|')})/` }
  }
})

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'src-folder-unknown',
      severity: 'error',
      comment: 'every folder of src/ has a layer: add a new one to LAYERS in .dependency-cruiser.cjs and to docs/ARCHITECTURE.md',
      from: { path: '^src/', pathNot: `^src/(${[...rank.keys()].join('|')})/` },
      to: {}
    },
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'no import cycles between files of src/',
      from: { path: '^src/' },
      to: { circular: true }
    },
    {
      name: 'product-imports-no-tests',
      severity: 'error',
      comment: 'product code never imports tests or scripts',
      from: { path: '^src/' },
      to: { path: '^(test|scripts)/' }
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'an import that does not resolve',
      from: {},
      to: { couldNotResolve: true }
    }
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
    // type-only imports are dependencies too: a layer must not even name an upper layer's types
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'], extensions: ['.ts', '.js', '.json'] },
    moduleSystems: ['es6', 'cjs']
  }
}
// for test/unit/architecture.test.ts (not part of the dependency-cruiser schema)
Object.defineProperty(module.exports, 'LAYERS', { value: LAYERS, enumerable: false })
