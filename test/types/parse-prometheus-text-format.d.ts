// The package ships no types; this is the shape it documents (that of prom2json).
declare module 'parse-prometheus-text-format' {
  export interface ParsedSample {
    readonly value: string;
    readonly labels?: Record<string, string>;
  }
  export interface ParsedFamily {
    readonly name: string;
    readonly help: string;
    readonly type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';
    readonly metrics: readonly ParsedSample[];
  }
  export default function parsePrometheusTextFormat(text: string): ParsedFamily[];
}
