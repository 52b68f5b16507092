// Escaping for the record's line-oriented text files (cmd, files.meta, procs).
// Paths are bytes, not always UTF-8: tab, newline, carriage return and backslash are
// written as \t \n \r \\, bytes that are not valid UTF-8 as \xHH, so every line
// round-trips to the exact bytes.

export function escapeBytes(bytes: Uint8Array | string): string {
  // a plain string is its own escaped text: no UTF-8 copy to look at (a process table
  // escapes every argument of every process)
  if (typeof bytes === 'string' && isPlainText(bytes)) return bytes;
  const buf =
    typeof bytes === 'string' ? Buffer.from(bytes, 'utf8')
    : Buffer.isBuffer(bytes) ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // the usual case, printable ASCII without a backslash, is the bytes as they are
  if (isPlain(buf, 0, buf.length)) return buf.toString('latin1');
  let out = '';
  let i = 0;
  while (i < buf.length) {
    const b = buf[i]!;
    if (b === 0x09) out += '\\t';
    else if (b === 0x0a) out += '\\n';
    else if (b === 0x0d) out += '\\r';
    else if (b === 0x5c) out += '\\\\';
    else if (b < 0x20 || b === 0x7f) out += '\\x' + b.toString(16).padStart(2, '0');
    else if (b < 0x80) out += String.fromCharCode(b);
    else {
      const len = utf8SequenceLength(buf, i);
      if (len === 0) out += '\\x' + b.toString(16).padStart(2, '0');
      else {
        out += buf.toString('utf8', i, i + len);
        i += len;
        continue;
      }
    }
    i++;
  }
  return out;
}

/** escapeBytes(buf.subarray(start, end)), without a view for the usual plain path. */
export function escapeRange(buf: Buffer, start: number, end: number): string {
  return isPlain(buf, start, end) ? buf.toString('latin1', start, end) : escapeBytes(buf.subarray(start, end));
}

/** Printable ASCII without a backslash: its escaped text is the bytes themselves. */
export function isPlain(buf: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const b = buf[i]!;
    if (b < 0x20 || b >= 0x7f || b === 0x5c) return false;
  }
  return true;
}

/** isPlain for text: a field of the record that is its own canonical escaped form. */
export function isPlainText(text: string): boolean {
  return PLAIN_TEXT.test(text);
}
const PLAIN_TEXT = /^[\x20-\x5b\x5d-\x7e]*$/;

/** Inverse of escapeBytes. Throws on a malformed escape so corruption is noticed. */
export function unescapeBytes(text: string): Buffer {
  if (!text.includes('\\')) return Buffer.from(text, 'utf8');
  const parts: Buffer[] = [];
  let run = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c !== '\\') {
      run += c;
      continue;
    }
    const next = text[++i];
    if (next === 't') run += '\t';
    else if (next === 'n') run += '\n';
    else if (next === 'r') run += '\r';
    else if (next === '\\') run += '\\';
    else if (next === 'x') {
      const hex = text.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new Error(`malformed escape "\\x${hex}" in "${text}"`);
      parts.push(Buffer.from(run, 'utf8'), Buffer.from([parseInt(hex, 16)]));
      run = '';
      i += 2;
    } else throw new Error(`malformed escape "\\${next ?? ''}" in "${text}"`);
  }
  parts.push(Buffer.from(run, 'utf8'));
  return Buffer.concat(parts);
}

export function unescapeString(text: string): string {
  return unescapeBytes(text).toString('utf8');
}

// Length of a valid UTF-8 sequence starting at i, or 0 when the bytes there are not one.
function utf8SequenceLength(buf: Buffer, i: number): number {
  const b = buf[i]!;
  let len: number;
  let min: number;
  if (b >= 0xc2 && b <= 0xdf) [len, min] = [2, 0x80];
  else if (b >= 0xe0 && b <= 0xef) [len, min] = [3, 0x800];
  else if (b >= 0xf0 && b <= 0xf4) [len, min] = [4, 0x10000];
  else return 0;
  if (i + len > buf.length) return 0;
  let cp = b & (0xff >> (len + 1));
  for (let k = 1; k < len; k++) {
    const c = buf[i + k]!;
    if ((c & 0xc0) !== 0x80) return 0;
    cp = (cp << 6) | (c & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}
