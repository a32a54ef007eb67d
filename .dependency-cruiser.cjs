// The import graph's rules (issue 14): `npm run lint:deps` checks them, and so does
// test/edge-shim/import-boundaries.test.ts. Type-only imports count as imports.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycle',
      comment: 'Modules that import each other, directly or through others: move what they share where both can import it.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'edge-shim-through-the-door',
      comment:
        'The edge shim reaches functions/ through functions/src/edge/ alone: index.ts, or runner.ts for the runner that a fallback ' +
        "agent's process loads lazily. Export what it needs from there.",
      severity: 'error',
      from: { path: '^edge-shim/' },
      to: { path: '^functions/', pathNot: '^functions/src/edge/(index|runner)[.]ts$' },
    },
    {
      name: 'functions-not-to-edge-shim',
      comment: 'The agents run in Lambda without the shim: functions/ must not import it.',
      severity: 'error',
      from: { path: '^functions/' },
      to: { path: '^edge-shim/' },
    },
    {
      name: 'infra-not-from-product',
      comment: 'The CDK app deploys the agents; the agents and the shim do not import it.',
      severity: 'error',
      from: { path: '^(edge-shim|functions)/' },
      to: { path: '^infra/' },
    },
    {
      name: 'product-not-to-tools',
      comment: 'What ships (edge-shim/, functions/, infra/) imports none of the drill, the benchmarks, the test kit or the tests.',
      severity: 'error',
      from: { path: '^(edge-shim|functions|infra)/' },
      to: { path: '^(drill|bench|testkit|test)/' },
    },
    {
      name: 'only-tests-import-tests',
      comment: 'test/ is for the tests alone: share a helper through testkit/ instead.',
      severity: 'error',
      from: { pathNot: '^test/' },
      to: { path: '^test/' },
    },
    {
      name: 'testkit-imports-no-user',
      comment: 'testkit/ is what drill/, bench/ and test/ share: it imports none of them.',
      severity: 'error',
      from: { path: '^testkit/' },
      to: { path: '^(drill|bench|test)/' },
    },
    {
      name: 'drill-and-bench-apart',
      comment: 'The drill and the benchmarks share through testkit/, not through each other.',
      severity: 'error',
      from: { path: '^(drill|bench)/' },
      to: { path: '^(drill|bench)/', pathNot: '^$1/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist|cdk[.]out)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
