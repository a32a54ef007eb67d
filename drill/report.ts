import { type DrillReport, type RunReport, describeLink } from './drill.js';

const percent = (share: number | null) => (share === null ? '–' : `${Math.round(share * 100)}%`);
const secondsText = (value: number | null) => (value === null ? '–' : `${value.toFixed(1)} s`);
const yesNo = (value: boolean) => (value ? 'yes' : '**NO**');

/** Rows of the report's table: what each run shows, the edge's run first, the baseline next to it. */
function rows(edge: RunReport, baseline: RunReport | null): Array<[string, string, string]> {
  const both = (label: string, value: (run: RunReport) => string): [string, string, string] => [label, value(edge), baseline ? value(baseline) : ''];
  const edgeOnly = (label: string, value: string): [string, string, string] => [label, value, baseline ? '–' : ''];
  return [
    both('payments sent', (run) => String(run.sent)),
    both('acknowledged', (run) => String(run.acknowledged)),
    both('refused (send failed after the SDK\'s retries)', (run) => `${run.rejected}${run.rejectedButProcessed ? ` (${run.rejectedButProcessed} processed anyway)` : ''}`),
    both('**lost** (acknowledged, never final in the region)', (run) => `**${run.lost}**`),
    both('**authorized twice**', (run) => `**${run.authorizedTwice}**`),
    both('**posted twice**', (run) => `**${run.postedTwice}**`),
    both('notified twice', (run) => String(run.notifiedTwice)),
    both('ledger balanced', (run) => yesNo(run.ledgerBalanced)),
    both('completed / escalated / compensated', (run) => `${run.completed} / ${run.escalated} / ${run.compensated}`),
    edgeOnly('handled at the edge (its authorize step ran there)', String(edge.handledAtEdge)),
    edgeOnly('processed at the edge (authorized there)', `${edge.processedAtEdge} (${percent(edge.processedAtEdgeShare)} of those handled there)`),
    edgeOnly('escalated at the edge (to human review)', String(edge.escalatedAtEdge)),
    edgeOnly('detection (cut → edge offline)', secondsText(edge.detectionSeconds)),
    edgeOnly('times the edge went offline', String(edge.timesOffline)),
    ...(edge.killedNode === null ? [] : [edgeOnly('edge node SIGKILLed during the outage (it held the replay lease)', edge.killedNode)]),
    edgeOnly('region back → edge online (synced, replayed)', secondsText(edge.backOnlineSeconds)),
    both('recovery (region back → synced and drained)', (run) => secondsText(run.recoverySeconds)),
    edgeOnly('peak local backlog', `${edge.peakBacklog} messages`),
    edgeOnly('replayed to the region', String(edge.replayed)),
    edgeOnly('synced (written / identical / conflicts)', edge.sync ? `${edge.sync.written} / ${edge.sync.identical} / ${edge.sync.conflicts}` : '–'),
    edgeOnly('conflicts reported (made on purpose)', `${edge.conflicts} (${edge.conflictsMade})`),
    edgeOnly('fallback-agent restarts', String(edge.fallbackAgentRestarts)),
    both('velocity counters right', (run) => yesNo(run.velocityMismatches.length === 0)),
  ];
}

/** The report as Markdown: the settings, the table (edge and baseline side by side), and any failed check. */
export function markdownReport(report: DrillReport): string {
  const { drill } = report;
  const lines = [
    `# Outage drill: ${report.passed ? 'passed' : 'FAILED'}`,
    '',
    `${drill.outageSeconds} s outage (${drill.kind}), ${drill.rate} payments/s, ${Math.round(drill.lowRiskShare * 100)}% low-risk, seed ${drill.seed}; ` +
      `region: ${drill.region === 'moto' ? 'a moto server' : 'the given emulator'}, reached ${drill.link ? `through ${describeLink(drill.link)} outside the outage` : 'on loopback'}; edge: ${drill.edgeNodes === 1 ? 'one node on SQLite' : `${drill.edgeNodes} nodes on PostgreSQL behind HAProxy`}, probe every ${drill.timing.probeIntervalMs} ms, offline after ${drill.timing.breakerFailures} failures, ` +
      `back after ${drill.timing.recoveryProbes} good probes over ${drill.timing.recoveryMs / 1000} s. Started ${drill.startedAt}, took ${drill.durationSeconds.toFixed(0)} s.`,
    '',
    report.baseline ? '| | through the edge | baseline: straight to the region |' : '| | through the edge |',
    report.baseline ? '| --- | ---: | ---: |' : '| --- | ---: |',
    ...rows(report, report.baseline).map(([label, edge, baseline]) => (report.baseline ? `| ${label} | ${edge} | ${baseline} |` : `| ${label} | ${edge} |`)),
  ];
  const failures = [...report.failures.map((failure) => `- edge run: ${failure}`), ...(report.baseline?.failures ?? []).map((failure) => `- baseline: ${failure}`)];
  if (failures.length > 0) lines.push('', '## Failed checks', '', ...failures);
  if (report.workDir) lines.push('', `Kept: ${report.workDir} (databases, the shim's and the region's logs).`);
  return `${lines.join('\n')}\n`;
}
