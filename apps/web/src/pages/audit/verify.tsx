import { useMutation } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import { messageOf } from '../../lib/errors.ts';
import { formatNumber, shortHash } from '../../lib/format.ts';
import { type RouterOutputs, useTRPCClient } from '../../trpc.ts';

type VerifyResult = RouterOutputs['audit']['verify'];

const REASONS: Record<string, string> = {
  hash_mismatch: 'an event’s content does not match its hash (it was edited)',
  broken_link: 'an event does not link to the one before it',
  gap: 'events are missing',
  checkpoint_invalid: 'the exported checkpoint’s signature is not valid',
  checkpoint_mismatch: 'the log does not match the signed checkpoint',
  truncated: 'the log is shorter than the signed checkpoint',
};

/**
 * Recomputes every hash on the server and holds the log to the latest signed checkpoint, over the `verifyStream`
 * subscription: the bar follows the events the server has walked (`checked` of `total`), then the result shows. The
 * button goes where the page wants it; the progress and the result take the full width under it.
 */
export function useVerify() {
  const client = useTRPCClient();
  const abort = useRef<(() => void) | null>(null);
  const [started, setStarted] = useState<number | null>(null);
  const [progress, setProgress] = useState<{ checked: number; total: number } | null>(null);
  const mutation = useMutation({
    mutationFn: () =>
      new Promise<VerifyResult>((resolve, reject) => {
        let finished = false;
        const sub = client.audit.verifyStream.subscribe(undefined, {
          onData(item) {
            if (item.type === 'progress') setProgress({ checked: item.checked, total: item.total });
            else {
              finished = true;
              resolve(item.result);
            }
          },
          onError(error) {
            finished = true;
            reject(error);
          },
          onComplete() {
            if (!finished) reject(new Error('The server ended the verification without a result'));
          },
        });
        abort.current = () => {
          sub.unsubscribe();
          if (!finished) reject(new Error('Cancelled'));
          finished = true;
        };
      }),
    onMutate: () => {
      setStarted(Date.now());
      setProgress(null);
    },
  });
  return { mutation, started, progress, cancel: () => abort.current?.() };
}

type Verify = ReturnType<typeof useVerify>;

export function VerifyButton({ verify }: { verify: Verify }) {
  return (
    <button type="button" className="btn" onClick={() => verify.mutation.mutate()} disabled={verify.mutation.isPending}>
      {verify.mutation.isPending ? 'Verifying…' : 'Verify chain'}
    </button>
  );
}

export function VerifyStatus({
  verify,
  expected,
  onShowSeq,
}: {
  verify: Verify;
  expected: number | null;
  onShowSeq: (seq: number) => void;
}) {
  const { mutation, started, progress } = verify;
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!mutation.isPending) return;
    const t = setInterval(() => setNow(Date.now()), 250);
    return () => clearInterval(t);
  }, [mutation.isPending]);
  const elapsed = started ? Math.max(0, (now - started) / 1000) : 0;
  if (mutation.isPending) {
    return (
      <div className="callout verify-progress" role="status" aria-live="polite">
        <div className="progress" aria-hidden="true">
          {progress && progress.total > 0 ? (
            <div
              className="progress-bar"
              data-testid="verify-progress"
              style={{ width: `${Math.min(100, (100 * progress.checked) / progress.total).toFixed(1)}%` }}
            />
          ) : (
            <div className="progress-bar indeterminate" />
          )}
        </div>
        <span>
          {progress
            ? `Recomputed ${formatNumber(progress.checked)} of ${formatNumber(progress.total)} hashes`
            : `Recomputing the hash of ${expected ? `${formatNumber(expected)} events` : 'every event'}`}{' '}
          and checking the signed checkpoint… {elapsed.toFixed(1)} s
        </span>
        <button type="button" className="btn btn-small" onClick={verify.cancel}>
          Cancel
        </button>
      </div>
    );
  }
  if (mutation.isSuccess)
    return <VerifyOutcome result={mutation.data} onShowSeq={onShowSeq} onDismiss={mutation.reset} />;
  if (mutation.isError) {
    return (
      <div className="callout callout-danger" role="alert">
        Verification did not finish: {messageOf(mutation.error)}{' '}
        <button type="button" className="btn-link" onClick={mutation.reset}>
          Dismiss
        </button>
      </div>
    );
  }
  return null;
}

export function VerifyOutcome({
  result,
  onShowSeq,
  onDismiss,
}: {
  result: VerifyResult;
  onShowSeq: (seq: number) => void;
  onDismiss: () => void;
}) {
  if (result.ok) {
    return (
      <div className="callout callout-success" role="status" data-testid="verify-result">
        <strong>Chain intact.</strong> {formatNumber(result.checked)} events checked
        {result.head ? (
          <>
            , head #{result.head.seq} <code className="mono">{shortHash(result.head.hash)}</code>
          </>
        ) : null}
        .{' '}
        {result.checkpoint
          ? `Matches the signed checkpoint at size ${formatNumber(result.checkpoint.size)}.`
          : 'No signed checkpoint exported yet.'}
        <button type="button" className="btn-link small" onClick={onDismiss}>
          Dismiss
        </button>
      </div>
    );
  }
  return (
    <div className="callout callout-danger" role="alert" data-testid="verify-result">
      <strong>Chain broken{result.first_bad_seq !== null ? ` at seq ${result.first_bad_seq}` : ''}.</strong>{' '}
      {result.reason ? (REASONS[result.reason] ?? result.reason) : 'The log does not verify.'} (
      {formatNumber(result.checked)} events checked
      {result.checkpoint
        ? `; checkpoint at size ${result.checkpoint.size} ${result.checkpoint.ok ? 'holds' : 'does not hold'}`
        : ''}
      ).{' '}
      {result.first_bad_seq !== null ? (
        <button type="button" className="btn-link" onClick={() => onShowSeq(result.first_bad_seq ?? 0)}>
          Show event #{result.first_bad_seq}
        </button>
      ) : null}
    </div>
  );
}
