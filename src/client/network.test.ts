// Unit tests for telling never-sent from maybe-sent fetch failures, with the error shapes undici
// and browsers actually produce.
import { describe, expect, it } from 'vitest';
import { classifyNetworkFailure } from './network.js';

function undiciError(cause: unknown): TypeError {
  return new TypeError('fetch failed', { cause });
}
function systemError(code: string): Error {
  return Object.assign(new Error(code), { code });
}

describe('classifyNetworkFailure', () => {
  it('knows a refused or unresolvable connection never sent anything', () => {
    for (const code of ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']) {
      expect(classifyNetworkFailure(undiciError(systemError(code)))).toEqual({ sent: 'no', code });
    }
  });

  it('treats resets and socket errors as maybe sent', () => {
    for (const code of ['ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE', 'UND_ERR_HEADERS_TIMEOUT']) {
      expect(classifyNetworkFailure(undiciError(systemError(code)))).toEqual({ sent: 'maybe', code });
    }
  });

  it('needs every address of a happy-eyeballs attempt to have refused', () => {
    const allRefused = new AggregateError([systemError('ECONNREFUSED'), systemError('ECONNREFUSED')]);
    expect(classifyNetworkFailure(undiciError(allRefused)).sent).toBe('no');
    const oneReset = new AggregateError([systemError('ECONNREFUSED'), systemError('ECONNRESET')]);
    expect(classifyNetworkFailure(undiciError(oneReset)).sent).toBe('maybe');
    const oneUnknown = new AggregateError([systemError('ECONNREFUSED'), new Error('?')]);
    expect(classifyNetworkFailure(undiciError(oneUnknown)).sent).toBe('maybe');
  });

  it('treats a browser-style failure with no detail as maybe sent', () => {
    expect(classifyNetworkFailure(new TypeError('Failed to fetch'))).toEqual({
      sent: 'maybe',
      code: undefined,
    });
    expect(classifyNetworkFailure('weird')).toEqual({ sent: 'maybe', code: undefined });
  });
});
