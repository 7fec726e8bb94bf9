import { useRef } from 'react';
import { CopyButton } from './copy-button.tsx';
import { Dialog } from './dialog.tsx';

interface SecretRevealProps {
  title: string;
  secret: string;
  /** What the secret is, for the warning: "API key". */
  what: string;
  detail?: string;
  onDone: () => void;
}

/**
 * Shows a freshly made secret exactly once. Only its hash is stored, so once this closes nobody can show it again;
 * the dialog cannot be dismissed by Escape or a stray click, only by saying it was saved.
 */
export function SecretReveal({ title, secret, what, detail, onDone }: SecretRevealProps) {
  const field = useRef<HTMLInputElement>(null);
  return (
    <Dialog open title={title} onClose={onDone} dismissable={false}>
      <div className="callout callout-warning" role="note">
        <strong>Copy this {what} now.</strong> It is shown only once: Keyledger keeps only a hash of it and cannot show
        it again. If you lose it, rotate the key.
      </div>
      {detail ? <p className="muted">{detail}</p> : null}
      <div className="field">
        <label className="field-label" htmlFor="new-secret">
          Your new {what}
        </label>
        <div className="secret-row">
          <input
            id="new-secret"
            ref={field}
            className="input mono secret"
            readOnly
            value={secret}
            aria-label={`New ${what}`}
            data-testid="secret-value"
            onFocus={() => field.current?.select()}
          />
          <CopyButton text={secret} />
        </div>
      </div>
      <div className="dialog-actions">
        <button type="button" className="btn" onClick={onDone}>
          I have saved it
        </button>
      </div>
    </Dialog>
  );
}
