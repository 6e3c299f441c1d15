// How a call uses the ETag cache (etag-cache.ts): a plain JSON GET asks with the remembered ETag
// and gets the remembered data back on 304; any other method forgets the URL it wrote to.

import type { EtagCache } from './etag-cache.js';
import type { Call } from './request.js';
import type { Result } from './result.js';

export async function cachedRun<TData>(
  cache: EtagCache,
  url: string,
  call: Call,
  send: (call: Call) => Promise<Result<TData>>,
): Promise<Result<TData>> {
  const { options } = call;
  const plainGet =
    call.method === 'GET' &&
    (options.responseType === undefined || options.responseType === 'json') &&
    options.ifNoneMatch === undefined;
  if (!plainGet) {
    const result = await send(call);
    // Whatever the outcome, a write may have changed what the URL holds.
    if (call.method !== 'GET' && call.method !== 'HEAD') cache.forget(url);
    return result;
  }
  const cached = cache.get(url);
  const result = await send(
    cached === undefined ? call : { ...call, options: { ...options, ifNoneMatch: cached.etag } },
  );
  if (!result.ok) return result;
  // Copies in and out, so a caller editing its data cannot change what the next call gets.
  if (result.notModified && cached !== undefined)
    return { ...result, data: structuredClone(cached.data) as TData };
  if (result.status === 200 && result.etag !== undefined)
    cache.set(url, result.etag, structuredClone(result.data));
  return result;
}
