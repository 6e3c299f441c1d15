// The progress of a chaos run on stderr: a bar redrawn in place on a terminal, or one line
// per tenth of the run in a log, so CI output stays short.

export interface ProgressSnapshot {
  done: number;
  total: number;
  elapsedMs: number;
  kills: number;
  resets: number;
  delays: number;
}

const barWidth = 30;

export function progressLine(s: ProgressSnapshot): string {
  const filled = Math.round((barWidth * s.done) / Math.max(1, s.total));
  const bar = `${'█'.repeat(filled)}${'░'.repeat(barWidth - filled)}`;
  return (
    `${bar} ${s.done}/${s.total} orders · ${(s.elapsedMs / 1000).toFixed(0)} s · ` +
    `kills ${s.kills} · resets ${s.resets} · delays ${s.delays}`
  );
}

export interface Progress {
  update(snapshot: ProgressSnapshot): void;
  finish(snapshot: ProgressSnapshot): void;
}

export function createProgress(mode: 'bar' | 'lines' | 'off', write: (text: string) => void): Progress {
  if (mode === 'off') return { update: () => {}, finish: () => {} };
  if (mode === 'bar') {
    let lastDrawMs = 0;
    return {
      update(snapshot) {
        if (snapshot.elapsedMs - lastDrawMs < 100 && snapshot.done < snapshot.total) return;
        lastDrawMs = snapshot.elapsedMs;
        write(`\r${progressLine(snapshot)}`);
      },
      finish: (snapshot) => write(`\r${progressLine(snapshot)}\n`),
    };
  }
  let lastTenth = 0;
  return {
    update(snapshot) {
      const tenth = Math.floor((10 * snapshot.done) / Math.max(1, snapshot.total));
      if (tenth > lastTenth) {
        lastTenth = tenth;
        write(`${progressLine(snapshot)}\n`);
      }
    },
    finish: (snapshot) => {
      if (lastTenth < 10) write(`${progressLine(snapshot)}\n`);
    },
  };
}
