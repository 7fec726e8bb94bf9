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
  // The base64 key may itself hold '+': split off only the first four fields, as Go's NewSigner does.
  const [priv, key, name = '', idHex = '', b64 = ''] = splitFields(text.trim(), 5);
  if (priv !== 'PRIVATE' || key !== 'KEY') throw new NoteError('not a signer key');
  checkName(name);
  const raw = decodeBase64(b64);
  if (raw?.length !== 33 || raw[0] !== ED25519) throw new NoteError('signer key is not an Ed25519 key');
  const signer = signerFromSeed(name, raw.subarray(1));
  if (!sameKeyId(idHex, signer.keyId)) throw new NoteError('signer key id does not match its key');
  return signer;
}

export function verifierKeyOf(signer: NoteSigner): string {
  return `${signer.name}+${signer.keyId.toString('hex')}+${Buffer.concat([Buffer.from([ED25519]), signer.publicKey]).toString('base64')}`;
}

export function parseVerifierKey(text: string): NoteVerifier {
  const [name = '', idHex = '', b64 = ''] = splitFields(text.trim(), 3);
  if (!b64) throw new NoteError('not a verifier key (name+id+key)');
  checkName(name);
  const raw = decodeBase64(b64);
  if (raw?.length !== 33 || raw[0] !== ED25519) throw new NoteError('verifier key is not an Ed25519 key');
  const pub = raw.subarray(1);
  const id = keyId(name, pub);
  if (!sameKeyId(idHex, id)) throw new NoteError('verifier key id does not match its key');
  return {
    name,
    keyId: id,
    publicKey: createPublicKey({ key: Buffer.concat([SPKI_PREFIX, pub]), format: 'der', type: 'spki' }),
  };
}

/** Splits at the first `count - 1` '+' signs; the last field keeps any further '+' (base64 uses it). */
function splitFields(text: string, count: number): string[] {
  const fields: string[] = [];
  let rest = text;
  while (fields.length < count - 1) {
    const at = rest.indexOf('+');
    if (at < 0) break;
    fields.push(rest.slice(0, at));
    rest = rest.slice(at + 1);
  }
  fields.push(rest);
  return fields;
}

function sameKeyId(idHex: string, id: Buffer): boolean {
  return /^[0-9a-fA-F]{8}$/.test(idHex) && idHex.toLowerCase() === id.toString('hex');
}

/**
 * Standard, padded base64 only, as Go's base64.StdEncoding reads it. Node's own decoder skips characters it does
 * not know, accepts the URL alphabet and missing or extra padding, so many strings would decode to one key.
 */
function decodeBase64(text: string): Buffer | null {
  if (text.length === 0 || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return null;
  const raw = Buffer.from(text, 'base64');
  return raw.toString('base64') === text ? raw : null;
}

/** Go's note.Open refuses invalid UTF-8 and every ASCII control character but newline. */
function checkNoteChars(text: string): void {
  if (!text.isWellFormed()) throw new NoteError('malformed note: invalid Unicode');
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 && c !== 0x0a) throw new NoteError('malformed note: control character');
  }
}

const MAX_SIGNATURES = 100;

/** Signs `text` (which must end in a newline) and returns the note: text, a blank line, the signature line. */
export function signNote(text: string, signer: NoteSigner): string {
  if (!text.endsWith('\n') || text.includes('\n\n'))
    throw new NoteError('note text must end in a newline and hold no blank line');
  checkNoteChars(text);
  const signature = sign(null, Buffer.from(text, 'utf8'), signer.privateKey);
  return `${text}\n${SIGNATURE_PREFIX}${signer.name} ${Buffer.concat([signer.keyId, signature]).toString('base64')}\n`;
}

/** Returns the note's text when a signature by `verifier` on it is valid; throws NoteError otherwise. */
export function openNote(note: string, verifier: NoteVerifier): string {
  checkNoteChars(note);
  const split = note.lastIndexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) throw new NoteError('malformed note: no signature block');
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) throw new NoteError('malformed note: too many signatures');
  // Parse the whole signature block before trusting any of it: one bad line makes the note malformed.
  const signatures = lines.map((line) => {
    if (!line.startsWith(SIGNATURE_PREFIX)) throw new NoteError('malformed note: bad signature line');
    const [name = '', b64 = '', extra] = line.slice(SIGNATURE_PREFIX.length).split(' ');
    const raw = decodeBase64(b64);
    if (!raw || raw.length < 5 || extra !== undefined || name.length === 0 || /[\s+]/.test(name))
      throw new NoteError('malformed note: bad signature line');
    return { name, raw };
  });
  let sawKey = false;
  for (const { name, raw } of signatures) {
    if (name !== verifier.name || !raw.subarray(0, 4).equals(verifier.keyId)) continue;
    sawKey = true;
    if (verify(null, Buffer.from(text, 'utf8'), verifier.publicKey, raw.subarray(4))) return text;
  }
  throw new NoteError(sawKey ? 'the note signature is invalid' : 'the note is not signed by this key');
}
