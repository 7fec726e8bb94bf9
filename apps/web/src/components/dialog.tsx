import { type ReactNode, useEffect, useId, useLayoutEffect, useRef } from 'react';

interface DialogProps {
  open: boolean;
  title: string;
  onClose: () => void;
  children: ReactNode;
  /** Escape and the backdrop do nothing: for a secret that must be acknowledged before it disappears. */
  dismissable?: boolean;
  wide?: boolean;
}

/**
 * A modal on the native <dialog>: the browser traps focus, restores it on close and makes the rest inert.
 * Escape closes it (unless not dismissable), as does a click on the backdrop.
 */
export function Dialog({ open, title, onClose, children, dismissable = true, wide = false }: DialogProps) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  // Unmounting an open <dialog> does not give focus back as close() does: close it first, and make sure the element
  // that opened it has focus again.
  useLayoutEffect(() => {
    if (!open) return;
    const opener = document.activeElement;
    const el = ref.current;
    return () => {
      if (el?.open && typeof el.close === 'function') el.close();
      if (opener instanceof HTMLElement && opener.isConnected && opener !== document.body) opener.focus();
    };
  }, [open]);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    if (open && !el.open) {
      if (typeof el.showModal === 'function') el.showModal();
      else el.setAttribute('open', '');
    } else if (!open && el.open) {
      if (typeof el.close === 'function') el.close();
      else el.removeAttribute('open');
    }
  }, [open]);
  if (!open) return null;
  return (
    <dialog
      ref={ref}
      className={wide ? 'dialog dialog-wide' : 'dialog'}
      aria-labelledby={titleId}
      onCancel={(e) => {
        e.preventDefault();
        if (dismissable) onClose();
      }}
      onMouseDown={(e) => {
        if (dismissable && e.target === ref.current) onClose();
      }}
    >
      <div className="dialog-body">
        <h2 id={titleId} className="dialog-title">
          {title}
        </h2>
        {children}
      </div>
    </dialog>
  );
}
