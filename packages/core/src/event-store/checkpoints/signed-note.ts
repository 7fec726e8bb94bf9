import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';

/**
 * Signed notes (C2SP signed-note) with Ed25519, the envelope of C2SP tlog-checkpoint. A key is named; its id is the
 * first four bytes of SHA-256(name || "\n" || 0x01 || public key). Keys are written in the same text forms as Go's
 * golang.org/x/mod/sumdb/note, so existing tools can read them:
 *   signer:   PRIVATE+KEY+<name>+<id hex>+<base64(0x01 || seed)>
 *   verifier: <name>+<id hex>+<base64(0x01 || public key)>
 */
const ED25519 = 0x01;
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const SIGNATURE_PREFIX = '\u2014 ';

export class NoteError extends Error {
  override readonly name = 'NoteError';
}

export interface NoteSigner {
  readonly name: string;
  readonly keyId: Buffer;
  readonly privateKey: KeyObject;
  readonly publicKey: Buffer;
}

export interface NoteVerifier {
  readonly name: string;
  readonly keyId: Buffer;
  readonly publicKey: KeyObject;
}

function keyId(name: string, publicKey: Buffer): Buffer {
  return createHash('sha256')
    .update(`${name}\n`)
    .update(Buffer.from([ED25519]))
    .update(publicKey)
    .digest()
    .subarray(0, 4);
}

function checkName(name: string): void {
  if (name.length === 0 || /[\s+]/.test(name)) throw new NoteError('a key name must be non-empty, with no spaces or +');
}

export function generateSignerKey(name: string): string {
  checkName(name);
  const { privateKey } = generateKeyPairSync('ed25519');
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_PREFIX.length);
  const signer = signerFromSeed(name, seed);
  return `PRIVATE+KEY+${name}+${signer.keyId.toString('hex')}+${Buffer.concat([Buffer.from([ED25519]), seed]).toString('base64')}`;
}

function signerFromSeed(name: string, seed: Buffer): NoteSigner {
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const publicKey = createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length);
  return { name, keyId: keyId(name, publicKey), privateKey, publicKey };
}

export function parseSignerKey(text: string): NoteSigner {
  const parts = text.trim().split('+');
  if (parts.length !== 5 || parts[0] !== 'PRIVATE' || parts[1] !== 'KEY') throw new NoteError('not a signer key');
  const [, , name = '', idHex = '', b64 = ''] = parts;
  checkName(name);
  const raw = Buffer.from(b64, 'base64');
  if (raw.length !== 33 || raw[0] !== ED25519) throw new NoteError('signer key is not an Ed25519 key');
  const signer = signerFromSeed(name, raw.subarray(1));
  if (signer.keyId.toString('hex') !== idHex.toLowerCase()) throw new NoteError('signer key id does not match its key');
  return signer;
}

export function verifierKeyOf(signer: NoteSigner): string {
  return `${signer.name}+${signer.keyId.toString('hex')}+${Buffer.concat([Buffer.from([ED25519]), signer.publicKey]).toString('base64')}`;
}

export function parseVerifierKey(text: string): NoteVerifier {
  const parts = text.trim().split('+');
  if (parts.length !== 3) throw new NoteError('not a verifier key (name+id+key)');
  const [name = '', idHex = '', b64 = ''] = parts;
  checkName(name);
  const raw = Buffer.from(b64, 'base64');
  if (raw.length !== 33 || raw[0] !== ED25519) throw new NoteError('verifier key is not an Ed25519 key');
  const pub = raw.subarray(1);
  const id = keyId(name, pub);
  if (id.toString('hex') !== idHex.toLowerCase()) throw new NoteError('verifier key id does not match its key');
  return {
    name,
    keyId: id,
    publicKey: createPublicKey({ key: Buffer.concat([SPKI_PREFIX, pub]), format: 'der', type: 'spki' }),
  };
}

/** Signs `text` (which must end in a newline) and returns the note: text, a blank line, the signature line. */
export function signNote(text: string, signer: NoteSigner): string {
  if (!text.endsWith('\n') || text.includes('\n\n'))
    throw new NoteError('note text must end in a newline and hold no blank line');
  const signature = sign(null, Buffer.from(text, 'utf8'), signer.privateKey);
  return `${text}\n${SIGNATURE_PREFIX}${signer.name} ${Buffer.concat([signer.keyId, signature]).toString('base64')}\n`;
}

/** Returns the note's text when a signature by `verifier` on it is valid; throws NoteError otherwise. */
export function openNote(note: string, verifier: NoteVerifier): string {
  const split = note.lastIndexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) throw new NoteError('malformed note: no signature block');
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2, -1).split('\n');
  let sawKey = false;
  for (const line of lines) {
    if (!line.startsWith(SIGNATURE_PREFIX)) throw new NoteError('malformed note: bad signature line');
    const [name, b64, extra] = line.slice(SIGNATURE_PREFIX.length).split(' ');
    if (!name || !b64 || extra !== undefined) throw new NoteError('malformed note: bad signature line');
    const raw = Buffer.from(b64, 'base64');
    if (name !== verifier.name || raw.length < 4 || !raw.subarray(0, 4).equals(verifier.keyId)) continue;
    sawKey = true;
    if (verify(null, Buffer.from(text, 'utf8'), verifier.publicKey, raw.subarray(4))) return text;
  }
  throw new NoteError(sawKey ? 'the note signature is invalid' : 'the note is not signed by this key');
}
