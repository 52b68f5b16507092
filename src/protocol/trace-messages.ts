// Messages of the trace pipeline (collector -> merger, run -> collector) and the names
// the merger gives output annotations, which inspect reads back. Shared here so the
// collector, the merger and inspect depend on the protocol, not on each other.

/** Requests the collector actor answers (from the run). */
export const COLLECTOR_MESSAGES = {
  /** body: { pid: number } — the process ended and its writer closed its buffer */
  processEnded: 'trace.processEnded',
  /** no body: drain everything, have the merger write `perfetto`; answers TraceFinishStats */
  finish: 'trace.finish',
} as const;

/** Messages the merger actor takes (from the collector). */
export const MERGER_MESSAGES = {
  /** notification, body RecordsBody — Merger.records */
  records: 'trace.records',
  /** notification, body AdvanceBody — Merger.advance */
  advance: 'trace.advance',
  /** request, no body; answers MergeStats once `perfetto` is complete */
  finish: 'trace.merge.finish',
} as const;

/** Complete records of one process's buffer, in file order (the ArrayBuffer is
 * transferred, not copied). */
export interface RecordsBody {
  pid: number;
  bytes: Uint8Array;
}

/** No event at or before `watermark` (ns) is still to come; null means everything. */
export interface AdvanceBody {
  watermark: number | null;
}

/** Annotation carrying output bytes that are not valid UTF-8 (base64). */
export const OUTPUT_BASE64 = 'base64';
/** Annotation carrying output bytes that are valid UTF-8. */
export const OUTPUT_TEXT = 'text';
