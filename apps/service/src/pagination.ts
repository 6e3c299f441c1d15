// Opaque cursors for list endpoints: base64url of the last row's sequence number.
import { BadRequestError } from 'retrysafe/http';

export function encodeCursor(afterSeq: number): string {
  return Buffer.from(JSON.stringify({ after: afterSeq })).toString('base64url');
}

export function decodeCursor(cursor: string | undefined): number {
  if (cursor === undefined) return 0;
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { after?: unknown };
    if (Number.isSafeInteger(parsed.after) && (parsed.after as number) >= 0) return parsed.after as number;
  } catch {
    // Fall through to the 400 below.
  }
  throw new BadRequestError(
    'The cursor is not one this service issued; start again without it.',
    'invalid-cursor',
  );
}

/** The list body and its `Link: rel="next"` header. */
export function pageResponse<T>(path: string, limit: number, items: T[], nextAfterSeq: number | undefined) {
  const nextCursor = nextAfterSeq === undefined ? null : encodeCursor(nextAfterSeq);
  const link = nextCursor === null ? undefined : `<${path}?limit=${limit}&cursor=${nextCursor}>; rel="next"`;
  return { body: { data: items, nextCursor }, link };
}
