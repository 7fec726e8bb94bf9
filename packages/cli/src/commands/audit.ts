import { readFile } from 'node:fs/promises';
import {
  type CheckpointClaim,
  loadOrCreateSignerKey,
  makeCheckpoint,
  NoteError,
  openCheckpoint,
  parseSignerKey,
  parseVerifierKey,
  readLatestExportedCheckpoint,
  systemClock,
  verifierKeyOf,
  verifyChain,
} from '@keyledger/core';
import type { Command } from 'commander';
import { DEFAULT_PROFILE } from '../config/credentials.ts';
import { offlineEnv, UsageError } from '../env.ts';
import { openOffline } from '../offline-db.ts';
import { call, connect } from '../online/client.ts';
import { createOutput, EXIT } from '../output.ts';
import { registerAuditOnline } from './audit-online.ts';

interface VerifyFlags {
  checkpoint?: string;
  publicKey?: string;
  json?: boolean;
  online?: boolean;
  profile?: string;
}

interface VerifyResult {
  ok: boolean;
  checked: number;
  head: { seq: number; hash: string } | null;
  first_bad_seq: number | null;
  reason: string | null;
  checkpoint: { size: number; ok: boolean } | null;
}

function verifyText(result: VerifyResult): string {
  return result.ok
    ? `ok: ${result.checked} events verified${result.head ? `, head ${result.head.seq} ${result.head.hash}` : ''}${
        result.checkpoint ? `, checkpoint at ${result.checkpoint.size} holds` : ', no checkpoint to hold it to'
      }`
    : `FAILED at seq ${result.first_bad_seq}: ${result.reason} (${result.checked} events verified before it)`;
}

export function registerAudit(program: Command): void {
  const audit = program
    .command('audit')
    .description(
      'the event log: query, tail and export it (online); verify it (offline, or --online) and checkpoint it (offline)',
    );
  registerAuditOnline(audit);

  audit
    .command('verify')
    .description('walk the whole log, recompute every hash, and hold it to a signed checkpoint')
    .option(
      '--checkpoint <file>',
      'a checkpoint note exported by the server (default: the latest in the data directory)',
    )
    .option('--public-key <vkey>', 'the verifier key (default: derived from the signing key in the data directory)')
    .option('--json', 'machine-readable output')
    .option('--online', "ask the server to verify (its latest exported checkpoint), with the profile's credential")
    .option('--profile <name>', 'the credentials profile, with --online', DEFAULT_PROFILE)
    .action(async (flags: VerifyFlags) => {
      if (flags.online) {
        if (flags.checkpoint || flags.publicKey) {
          throw new UsageError('--checkpoint and --public-key are for the offline verification, not with --online');
        }
        const online = connect(flags);
        const result = await call(online, () => online.client.audit.verify.query());
        online.out.result(result, verifyText(result));
        process.exitCode = result.ok ? EXIT.ok : EXIT.failed;
        return;
      }
      const out = createOutput(Boolean(flags.json));
      const env = offlineEnv();
      const claim = await loadClaim(env, flags);
      const handle = await openOffline(env);
      try {
        const result = await verifyChain(handle.db, {
          checkpoint: claim ?? undefined,
          onProgress: ({ checked, total }) => out.progress(checked, total, 'verifying'),
        });
        out.endProgress();
        out.result(result, verifyText(result));
        process.exitCode = result.ok ? EXIT.ok : EXIT.failed;
      } finally {
        await handle.close();
      }
    });

  audit
    .command('checkpoint')
    .description('sign the current head now and export it')
    .option('--json', 'machine-readable output')
    .action(async (flags: { json?: boolean }) => {
      const out = createOutput(Boolean(flags.json));
      const env = offlineEnv();
      const { signer } = await loadOrCreateSignerKey({
        fromEnv: env.checkpointKey,
        path: env.checkpointKeyPath,
        name: env.checkpointOrigin,
      });
      const handle = await openOffline(env);
      try {
        const made = await makeCheckpoint(handle.db, {
          signer,
          origin: signer.name,
          exportDir: env.checkpointDir,
          clock: systemClock,
        });
        if (!made) {
          out.result({ size: 0, note: null }, 'the log is empty: nothing to checkpoint');
          return;
        }
        out.result(
          { size: made.size, origin: made.origin, note: made.note, public_key: verifierKeyOf(signer) },
          made.note.trimEnd(),
        );
      } finally {
        await handle.close();
      }
    });
}

async function loadClaim(env: ReturnType<typeof offlineEnv>, flags: VerifyFlags): Promise<CheckpointClaim | null> {
  const note = flags.checkpoint
    ? await readFile(flags.checkpoint, 'utf8')
    : await readLatestExportedCheckpoint(env.checkpointDir);
  if (!note) {
    if (flags.checkpoint) throw new UsageError(`no checkpoint in ${flags.checkpoint}`);
    return null;
  }
  let vkey = flags.publicKey;
  if (!vkey) {
    const keyText = env.checkpointKey ?? (await readFile(env.checkpointKeyPath, 'utf8').catch(() => undefined));
    if (!keyText)
      throw new UsageError('give --public-key: there is no signing key in the data directory to derive it from');
    vkey = verifierKeyOf(parseSignerKey(keyText));
  }
  try {
    return openCheckpoint(note, parseVerifierKey(vkey));
  } catch (error) {
    if (error instanceof NoteError) throw new CheckpointRejected(error.message);
    throw error;
  }
}

/** The checkpoint itself is not genuine: a verification failure, not a usage mistake. */
export class CheckpointRejected extends Error {
  override readonly name = 'CheckpointRejected';
}
