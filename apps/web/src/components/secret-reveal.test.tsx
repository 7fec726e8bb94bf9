import { fireEvent, render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { SecretReveal } from './secret-reveal.tsx';

const KEY = 'kl_key_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789';

describe('the shown-once secret dialog', () => {
  it('shows the key with a clear warning that it will not be shown again', () => {
    render(<SecretReveal title="Key created" what="API key" secret={KEY} onDone={() => {}} />);
    expect(screen.getByRole('dialog', { name: 'Key created' })).toBeTruthy();
    expect(screen.getByRole('note').textContent).toMatch(/Copy this API key now\..*shown only once/);
    expect((screen.getByLabelText('New API key') as HTMLInputElement).value).toBe(KEY);
    expect((screen.getByLabelText('New API key') as HTMLInputElement).readOnly).toBe(true);
  });

  it('copies the key to the clipboard and says so', async () => {
    const user = userEvent.setup();
    const writeText = vi.fn().mockResolvedValue(undefined);
    Object.defineProperty(navigator, 'clipboard', { value: { writeText }, configurable: true });
    render(<SecretReveal title="Key created" what="API key" secret={KEY} onDone={() => {}} />);
    await user.click(screen.getByRole('button', { name: 'Copy' }));
    expect(writeText).toHaveBeenCalledWith(KEY);
    await screen.findByRole('button', { name: 'Copied' });
  });

  it('says when copying failed, so the person copies it by hand', async () => {
    const user = userEvent.setup();
    const writeText = vi.fn().mockRejectedValue(new Error('denied'));
    Object.defineProperty(navigator, 'clipboard', { value: { writeText }, configurable: true });
    document.execCommand = () => false;
    render(<SecretReveal title="Key created" what="API key" secret={KEY} onDone={() => {}} />);
    await user.click(screen.getByRole('button', { name: 'Copy' }));
    await screen.findByRole('button', { name: 'Copy failed' });
  });

  it('is not dismissed by Escape: only by saying the key was saved', async () => {
    const user = userEvent.setup();
    const onDone = vi.fn();
    render(<SecretReveal title="Key created" what="API key" secret={KEY} onDone={onDone} />);
    const dialog = screen.getByRole('dialog');
    fireEvent(dialog, new Event('cancel', { cancelable: true }));
    await user.keyboard('{Escape}');
    expect(onDone).not.toHaveBeenCalled();
    await user.click(screen.getByRole('button', { name: 'I have saved it' }));
    await waitFor(() => expect(onDone).toHaveBeenCalledTimes(1));
  });
});
