import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  generateSignerKey,
  NoteError,
  openNote,
  parseSignerKey,
  parseVerifierKey,
  signNote,
  verifierKeyOf,
} from './signed-note.ts';

// Published test vectors of golang.org/x/mod/sumdb/note (sumdb/note/note_test.go: TestNewVerifier, TestNewSigner,
// TestSign, TestOpen). Matching them byte for byte is what makes our keys and notes readable by Go's tooling.
const GO = {
  peterVerifier: 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
  peterSigner: 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz',
  enochVerifier: 'EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop',
  text: "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n",
  peterSig:
    '\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n',
  enochSig:
    '\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n',
} as const;
const peterNote = `${GO.text}\n${GO.peterSig}`;

const BASE64_33_BYTES = '[A-Za-z0-9+/]{44}';

/** Flips one bit of byte `index` of the base64 payload of the note's first signature line. */
function flipSignatureByte(note: string, index: number): string {
  const match = /\n\u2014 (\S+) (\S+)\n$/.exec(note);
  if (!match) throw new Error('no signature line');
  const raw = Buffer.from(match[2] as string, 'base64');
  raw[index] = (raw[index] as number) ^ 0x01;
  return note.replace(match[2] as string, raw.toString('base64'));
}

describe('signed notes: our own keys', () => {
  it('round-trips: a note signed with a generated key opens with its verifier key and yields the text', () => {
    const signer = parseSignerKey(generateSignerKey('keyledger.example/log'));
    const verifier = parseVerifierKey(verifierKeyOf(signer));
    const text = 'keyledger.example/log\n42\nq83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=\n';
    const note = signNote(text, signer);
    expect(note.startsWith(`${text}\n\u2014 keyledger.example/log `)).toBe(true);
    expect(note.endsWith('\n')).toBe(true);
    expect(openNote(note, verifier)).toBe(text);
    // Ed25519 is deterministic: the same key and text always give the same note.
    expect(signNote(text, signer)).toBe(note);
  });

  it('writes the signer key as PRIVATE+KEY+<name>+<8 hex id>+base64(0x01 || 32-byte seed)', () => {
    const text = generateSignerKey('log.example');
    expect(text).toMatch(new RegExp(`^PRIVATE\\+KEY\\+log\\.example\\+[0-9a-f]{8}\\+${BASE64_33_BYTES}$`));
    const raw = Buffer.from(text.split('+').slice(4).join('+'), 'base64');
    expect(raw.length).toBe(33);
    expect(raw[0]).toBe(0x01);
  });

  it('writes the verifier key as <name>+<id>+base64(0x01 || public key), the id being SHA-256(name\\n 0x01 pub)[:4]', () => {
    const signer = parseSignerKey(generateSignerKey('log.example'));
    const vkey = verifierKeyOf(signer);
    const match = new RegExp(`^log\\.example\\+([0-9a-f]{8})\\+(${BASE64_33_BYTES})$`).exec(vkey);
    expect(match).not.toBeNull();
    const raw = Buffer.from(match?.[2] as string, 'base64');
    expect(raw[0]).toBe(0x01);
    expect(raw.subarray(1)).toEqual(signer.publicKey);
    const id = createHash('sha256').update('log.example\n').update(raw).digest().subarray(0, 4).toString('hex');
    expect(match?.[1]).toBe(id);
    expect(signer.keyId.toString('hex')).toBe(id);
  });

  it('parses every generated key, including those whose base64 holds a "+"', () => {
    // About half of all keys have a '+' in their base64; a parser that splits on every '+' rejects them.
    let sawPlus = 0;
    for (let i = 0; i < 64; i++) {
      const skey = generateSignerKey('log.example');
      if (skey.split('+').length > 5) sawPlus++;
      const signer = parseSignerKey(skey);
      const verifier = parseVerifierKey(verifierKeyOf(signer));
      expect(openNote(signNote('hello\n', signer), verifier)).toBe('hello\n');
    }
    expect(sawPlus).toBeGreaterThan(0);
  });

  it('refuses bad key names', () => {
    for (const name of ['', 'has space', 'has+plus', 'tab\tname']) {
      expect(() => generateSignerKey(name)).toThrow(NoteError);
    }
  });
});

describe('signed notes: interoperability with golang.org/x/mod/sumdb/note', () => {
  it("accepts Go's published signer and verifier keys, with the same name and key id", () => {
    const signer = parseSignerKey(GO.peterSigner);
    const verifier = parseVerifierKey(GO.peterVerifier);
    expect(signer.name).toBe('PeterNeumann');
    expect(signer.keyId.toString('hex')).toBe('c74f20a3');
    expect(verifier.keyId.toString('hex')).toBe('c74f20a3');
    expect(verifierKeyOf(signer)).toBe(GO.peterVerifier);
  });

  it("reproduces Go's signed note byte for byte (Ed25519 is deterministic)", () => {
    expect(signNote(GO.text, parseSignerKey(GO.peterSigner))).toBe(peterNote);
  });

  it("opens Go's signed note, alone and alongside another key's signature", () => {
    const peter = parseVerifierKey(GO.peterVerifier);
    const enoch = parseVerifierKey(GO.enochVerifier);
    expect(openNote(peterNote, peter)).toBe(GO.text);
    const both = `${GO.text}\n${GO.peterSig}${GO.enochSig}`;
    expect(openNote(both, peter)).toBe(GO.text);
    expect(openNote(both, enoch)).toBe(GO.text);
    expect(() => openNote(`${GO.text}\n${GO.enochSig}`, peter)).toThrow(/not signed by this key/);
  });

  it('rejects every substring and every one-byte change of the Go keys, as Go does', () => {
    const mangled = (key: string): string[] => {
      const out: string[] = [];
      for (let i = 0; i <= key.length; i++)
        for (let j = i + 1; j <= key.length; j++) if (i !== 0 || j !== key.length) out.push(key.slice(i, j));
      for (let i = 0; i < key.length; i++)
        out.push(key.slice(0, i) + String.fromCharCode(key.charCodeAt(i) + 1) + key.slice(i + 1));
      return out;
    };
    for (const bad of mangled(GO.peterVerifier)) expect(() => parseVerifierKey(bad), bad).toThrow(NoteError);
    for (const bad of mangled(GO.peterSigner)) expect(() => parseSignerKey(bad), bad).toThrow(NoteError);
    // From Go's TestNewVerifier: a wrong-length key and an unknown algorithm, each with a matching key hash.
    expect(() =>
      parseVerifierKey('PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=='),
    ).toThrow(NoteError);
    expect(() => parseVerifierKey('PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW')).toThrow(
      NoteError,
    );
  });

  it('rejects non-canonical base64 in keys, which Go does not decode', () => {
    const [name, id, b64] = GO.peterVerifier.split('+') as [string, string, string];
    for (const bad of [`${b64}==`, `${b64.slice(0, 10)}*${b64.slice(10)}`, `${b64.slice(0, 10)} ${b64.slice(10)}`]) {
      expect(() => parseVerifierKey(`${name}+${id}+${bad}`), bad).toThrow(NoteError);
    }
    expect(() => parseVerifierKey(`${name}+${id}+${b64.replace('/', '_')}`)).toThrow(NoteError);
  });
});

describe('signed notes: rejections', () => {
  const peter = parseVerifierKey(GO.peterVerifier);

  it('rejects a signature with one byte flipped', () => {
    for (const index of [4, 20, 67]) {
      expect(() => openNote(flipSignatureByte(peterNote, index), peter)).toThrow(/signature is invalid/);
    }
    // Go's TestOpen: four base64 characters spliced into the signature.
    const at = GO.peterSig.length - 40;
    const spliced = `${GO.text}\n${GO.peterSig.slice(0, at)}ABCD${GO.peterSig.slice(at)}`;
    expect(() => openNote(spliced, peter)).toThrow(NoteError);
  });

  it('rejects altered text', () => {
    expect(() => openNote(peterNote.replace('cryptography', 'cryptographY'), peter)).toThrow(/signature is invalid/);
    expect(() => openNote(`extra line\n${peterNote}`, peter)).toThrow(/signature is invalid/);
  });

  it('rejects a note signed by another key, or under another key name', () => {
    const other = parseSignerKey(generateSignerKey('PeterNeumann'));
    expect(() => openNote(signNote(GO.text, other), peter)).toThrow(/not signed by this key/);
    // Right key id and signature bytes, wrong name on the signature line.
    expect(() => openNote(peterNote.replace('PeterNeumann', 'CarmenSandiego'), peter)).toThrow(NoteError);
    // The same public key under another name is another key (its id differs).
    const renamed = GO.peterVerifier.replace('PeterNeumann', 'PeterNeuman');
    expect(() => parseVerifierKey(renamed)).toThrow(/id does not match/);
    // A signature line whose key id bytes are changed no longer names this key.
    expect(() => openNote(flipSignatureByte(peterNote, 0), peter)).toThrow(/not signed by this key/);
  });

  it('rejects keys whose id does not match the key', () => {
    expect(() => parseVerifierKey(GO.peterVerifier.replace('c74f20a3', 'c74f20a4'))).toThrow(/id does not match/);
    expect(() => parseSignerKey(GO.peterSigner.replace('c74f20a3', 'c74f20a4'))).toThrow(/id does not match/);
    expect(() => parseSignerKey(GO.peterVerifier)).toThrow(NoteError);
    expect(() => parseVerifierKey(GO.peterSigner)).toThrow(NoteError);
  });

  it('rejects malformed notes (the cases of Go TestOpen, and more)', () => {
    const bad = [
      GO.text,
      `${GO.text}\n`,
      `${GO.text}\n${GO.peterSig.slice(0, -1)}`,
      `\u0001${GO.text}\n${GO.peterSig}`,
      `${GO.text.slice(0, 5)}\t${GO.text.slice(5)}\n${GO.peterSig}`,
      `\uD800${GO.text}\n${GO.peterSig}`,
      `${GO.text}\n\u2014 Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=`,
      `${GO.text}\n${GO.peterSig}Unexpected line.\n`,
      `${GO.text}\n${GO.peterSig}\n`,
      `${GO.text}\n- PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`,
      `${GO.text}\n\u2014 PeterNeumann x08go\n`,
      `${GO.text}\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM\n`,
      `${GO.text}\n${GO.peterSig.repeat(101)}`,
      '',
    ];
    for (const note of bad) expect(() => openNote(note, peter), JSON.stringify(note)).toThrow(NoteError);
  });

  it('refuses to sign text that is not a note body', () => {
    const signer = parseSignerKey(GO.peterSigner);
    for (const text of ['no newline', 'blank\n\nline\n', 'control \u0001 char\n', '']) {
      expect(() => signNote(text, signer), JSON.stringify(text)).toThrow(NoteError);
    }
  });
});
