import type { ReactNode } from 'react';
import { messageOf } from '../lib/errors.ts';
import { Dialog } from './dialog.tsx';

interface ConfirmDialogProps {
  open: boolean;
  title: string;
  children: ReactNode;
  confirmLabel: string;
  onConfirm: () => void;
  onClose: () => void;
  pending?: boolean;
  error?: unknown;
  danger?: boolean;
}

/** "Are you sure?" for what cannot be undone: the destructive button is never the default focus. */
export function ConfirmDialog(props: ConfirmDialogProps) {
  const { open, title, children, confirmLabel, onConfirm, onClose, pending, error, danger = true } = props;
  return (
    <Dialog open={open} title={title} onClose={onClose}>
      <div className="dialog-text">{children}</div>
      {error ? (
        <p className="form-error" role="alert">
          {messageOf(error)}
        </p>
      ) : null}
      <div className="dialog-actions">
        <button type="button" className="btn" onClick={onClose}>
          Cancel
        </button>
        <button
          type="button"
          className={danger ? 'btn btn-danger' : 'btn btn-primary'}
          onClick={onConfirm}
          disabled={pending}
        >
          {pending ? 'Working…' : confirmLabel}
        </button>
      </div>
    </Dialog>
  );
}
