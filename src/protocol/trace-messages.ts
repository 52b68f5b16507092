// Messages of the trace pipeline (collector -> merger, run -> collector) and the names
// the merger gives output annotations, which inspect reads back. Shared here so the
// collector, the merger and inspect depend on the protocol, not on each other.

/** Requests the collector actor answers (from the run). */
export const COLLECTOR_MESSAGES = {
  /** body: { pid: number }: the process ended and its writer closed its buffer */
  processEnded: 'trace.processEnded',
  /** no body: drain everything, have the merger write `perfetto`; answers TraceFinishStats */
  finish: 'trace.finish',
  /** no body: what was collected so far; answers TraceProgress */
  progress: 'trace.progress',
} as const;

/** The collector's counts while the run goes on (the progress display shows them). */
export interface TraceProgress {
  events: number;
  /** Bytes of trace records read from the buffers. */
  bytes: number;
}

/** Messages the merger actor takes (from the collector). */
export const MERGER_MESSAGES = {
  /** notification, body RecordsBody: Merger.records for each buffer's records, then
   * Merger.advance when it carries a watermark */
  records: 'trace.records',
  /** notification, body AdvanceBody: Merger.advance */
  advance: 'trace.advance',
  /** request, no body; answers MergeStats once `perfetto` is complete */
  finish: 'trace.merge.finish',
  /** request, body { from }: the access index's rows from row `from` on (AccessRows,
   * the paths as the file escapes them), or null without the native index */
  rows: 'trace.merge.rows',
} as const;

/** Complete records of process pids[i]'s buffer in bytes[i], each in file order, as
 * one scan of the buffers read them: a message per scan, not per buffer, since most
 * buffers (short processes) are read once (the ArrayBuffers are transferred, not
 * copied). */
export interface RecordsBody {
  pids: number[];
  bytes: Uint8Array[];
  /** The scan's advance (AdvanceBody.watermark) with its records, in one message. */
  watermark?: number | null;
}

/** No event at or before `watermark` (ns) is still to come; null means everything. */
export interface AdvanceBody {
  watermark: number | null;
}

/** Annotation carrying output bytes that are not valid UTF-8 (base64). */
export const OUTPUT_BASE64 = 'base64';
/** Annotation carrying output bytes that are valid UTF-8. */
export const OUTPUT_TEXT = 'text';
