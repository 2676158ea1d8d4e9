// Completion certificates (docs/AUDIT.md section 7), verified in the browser: nothing is
// sent anywhere. SHA-256 and Ed25519 come from WebCrypto; the rest (RFC 8785 canonical
// JSON, signed notes, checkpoints, RFC 9162 inclusion proofs, the VC-JWT) is written out
// here after the document. `CertVerify.verify(bytes, vkeyText)` answers
// `{ ok, failures: [sentence…], facts }`.
'use strict';

(function () {
  const encoder = new TextEncoder();
  const FORMAT = 'karmayogi-lrs/certificate/v1';
  const COMPLETED = 'http://adlnet.gov/expapi/verbs/completed';
  const PASSED = 'http://adlnet.gov/expapi/verbs/passed';
  const IFIS = ['mbox', 'mbox_sha1sum', 'openid', 'account'];

  /** RFC 8785: the canonical text of a parsed JSON value. */
  function canonical(v) {
    if (v === null) return 'null';
    switch (typeof v) {
      case 'boolean': return v ? 'true' : 'false';
      case 'number':
        if (!Number.isFinite(v)) throw new Error('a number is out of range');
        return String(v);
      case 'string': return JSON.stringify(v);
      default: break;
    }
    if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
    // Array.prototype.sort compares UTF-16 code units, as RFC 8785 §3.2.3 asks.
    const keys = Object.keys(v).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`;
  }

  function concat(...parts) {
    const n = parts.reduce((a, p) => a + p.length, 0);
    const out = new Uint8Array(n);
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }

  async function sha256(...parts) {
    return new Uint8Array(await crypto.subtle.digest('SHA-256', concat(...parts)));
  }

  function equalBytes(a, b) {
    if (a.length !== b.length) return false;
    let d = 0;
    for (let i = 0; i < a.length; i += 1) d |= a[i] ^ b[i];
    return d === 0;
  }

  const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

  function fromHex(s) {
    if (!/^([0-9a-f]{2})*$/.test(s)) return null;
    const out = new Uint8Array(s.length / 2);
    for (let i = 0; i < out.length; i += 1) out[i] = parseInt(s.substr(i * 2, 2), 16);
    return out;
  }

  function toBase64(bytes) {
    let s = '';
    for (const b of bytes) s += String.fromCharCode(b);
    return btoa(s);
  }

  /** Standard padded base64, canonical only (it must encode back to the same text). */
  function fromBase64(s) {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) return null;
    let bin;
    try { bin = atob(s); } catch (_) { return null; }
    const out = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    return toBase64(out) === s ? out : null;
  }

  function fromBase64Url(s) {
    if (!/^[A-Za-z0-9_-]*$/.test(s)) return null;
    const std = s.replace(/-/g, '+').replace(/_/g, '/');
    return fromBase64(std + '='.repeat((4 - (std.length % 4)) % 4));
  }

  const toBase64Url = (b) => toBase64(b).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

  function u16(n) { return Uint8Array.of((n >> 8) & 255, n & 255); }
  function u32(n) { return Uint8Array.of((n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255); }
  function u64(big) {
    const out = new Uint8Array(8);
    let v = BigInt.asUintN(64, big);
    for (let i = 7; i >= 0; i -= 1) { out[i] = Number(v & 255n); v >>= 8n; }
    return out;
  }

  /** A vkey `<name>+<key id>+base64(0x01 ‖ key)` (AUDIT.md section 4). */
  async function parseVkey(text) {
    // The key's base64 may itself hold `+`: name and key id end at the first two.
    const m = /^([^+]+)\+([0-9a-f]{8})\+(.+)$/.exec(text.trim());
    const parts = m ? m.slice(1) : [];
    if (!m) {
      throw new Error('the verifier key is not of the form name+keyid+key');
    }
    const raw = fromBase64(parts[2]);
    if (!raw || raw.length !== 33 || raw[0] !== 1) {
      throw new Error('the verifier key is not an Ed25519 key');
    }
    const pub = raw.slice(1);
    const id = (await sha256(encoder.encode(parts[0]), Uint8Array.of(10, 1), pub)).slice(0, 4);
    if (hex(id) !== parts[1]) throw new Error('the verifier key\'s id does not match its name and key');
    const key = await crypto.subtle.importKey('raw', pub, { name: 'Ed25519' }, false, ['verify']);
    return { text: text.trim(), name: parts[0], id, pub, key };
  }

  async function ed25519(vkey, signature, message) {
    if (signature.length !== 64) return false;
    try {
      return await crypto.subtle.verify({ name: 'Ed25519' }, vkey.key, signature, message);
    } catch (_) {
      return false;
    }
  }

  /** Opens a signed note with one key (AUDIT.md section 4); answers its text. */
  async function openNote(note, vkey) {
    const split = note.lastIndexOf('\n\n');
    if (split < 0 || !note.endsWith('\n')) throw new Error('the checkpoint is not a signed note');
    const text = note.slice(0, split + 1);
    const lines = note.slice(split + 2, -1).split('\n');
    let verified = false;
    for (const line of lines) {
      const m = /^\u2014 (\S+) (\S+)$/.exec(line);
      if (!m) throw new Error('the checkpoint has a malformed signature line');
      const blob = fromBase64(m[2]);
      if (!blob || blob.length < 4) throw new Error('the checkpoint has a malformed signature');
      if (m[1] !== vkey.name || !equalBytes(blob.slice(0, 4), vkey.id)) continue;
      if (!(await ed25519(vkey, blob.slice(4), encoder.encode(text)))) {
        throw new Error('the checkpoint\'s signature by the log\'s key does not verify');
      }
      verified = true;
    }
    if (!verified) throw new Error('the checkpoint is not signed by this log\'s key');
    return text;
  }

  function parseCheckpoint(text) {
    const lines = text.split('\n');
    if (lines.length < 4 || !/^(0|[1-9][0-9]*)$/.test(lines[1])) throw new Error('the checkpoint is malformed');
    const root = fromBase64(lines[2]);
    if (!root || root.length !== 32) throw new Error('the checkpoint\'s root hash is malformed');
    return { origin: lines[0], size: BigInt(lines[1]), root };
  }

  /** RFC 9162 §2.1.3.2. */
  async function inclusionRoot(index, size, leaf, proof) {
    if (index >= size) return null;
    let fn = index;
    let sn = size - 1n;
    let r = leaf;
    for (const p of proof) {
      if (sn === 0n) return null;
      if ((fn & 1n) === 1n || fn === sn) {
        r = await sha256(Uint8Array.of(1), p, r);
        while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
      } else {
        r = await sha256(Uint8Array.of(1), r, p);
      }
      fn >>= 1n;
      sn >>= 1n;
    }
    return sn === 0n ? r : null;
  }

  /** AUDIT.md 6.3, 6.4: the leaf hash of a canonical statement. */
  async function leafHash(jcs, salt, department, storedMicros) {
    const dept = encoder.encode(department);
    const commitment = await sha256(
      encoder.encode('karmayogi-lrs/statement/v1'), Uint8Array.of(0), salt,
      u16(dept.length), dept, u32(jcs.length), jcs,
    );
    const entry = concat(Uint8Array.of(1, 1), commitment, u64(storedMicros));
    return sha256(Uint8Array.of(0), entry);
  }

  /** `c2sp.org/tlog-proof@v1` text: index, hashes and checkpoint. */
  function parseTlogProof(text) {
    const head = 'c2sp.org/tlog-proof@v1\n';
    if (typeof text !== 'string' || !text.startsWith(head)) return null;
    const end = text.indexOf('\n\n', head.length - 1);
    if (end < 0) return null;
    const lines = text.slice(head.length, end).split('\n');
    const m = /^index (0|[1-9][0-9]*)$/.exec(lines[0]);
    if (!m) return null;
    const hashes = [];
    for (const line of lines.slice(1)) {
      const h = fromBase64(line);
      if (!h || h.length !== 32) return null;
      hashes.push(h);
    }
    return { index: BigInt(m[1]), hashes, checkpoint: text.slice(end + 2) };
  }

  /** RFC 3339 → { seconds: BigInt, nanos: number } in UTC, or null. */
  function parseTime(s) {
    const m = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$/.exec(s || '');
    if (!m) return null;
    const ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
    if (Number.isNaN(ms)) return null;
    let seconds = BigInt(ms / 1000);
    if (m[8] !== 'Z' && m[8] !== 'z') {
      const sign = m[8][0] === '-' ? -1n : 1n;
      seconds -= sign * (BigInt(m[8].slice(1, 3)) * 3600n + BigInt(m[8].slice(4, 6)) * 60n);
    }
    return { seconds, nanos: Number((m[7] || '').padEnd(9, '0')) };
  }

  const micros = (t) => t.seconds * 1000000n + BigInt(Math.floor(t.nanos / 1000));

  /** RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits (AUDIT.md 7.3). */
  function formatTime(t) {
    const d = new Date(Number(t.seconds) * 1000);
    const base = d.toISOString().slice(0, 19);
    let frac = '';
    if (t.nanos !== 0) {
      frac = String(t.nanos).padStart(9, '0');
      while (frac.endsWith('000')) frac = frac.slice(0, -3);
      frac = `.${frac}`;
    }
    return `${base}${frac}Z`;
  }

  const earlier = (a, b) => a.seconds < b.seconds || (a.seconds === b.seconds && a.nanos < b.nanos);

  function ifiOf(agent) {
    if (!agent || typeof agent !== 'object' || Array.isArray(agent)) return null;
    const present = IFIS.filter((k) => agent[k] !== undefined);
    if (present.length !== 1) return null;
    return { kind: present[0], value: agent[present[0]] };
  }

  function sameIfi(a, b) {
    if (!a || !b || a.kind !== b.kind) return false;
    if (a.kind === 'account') {
      return typeof a.value === 'object' && a.value && typeof b.value === 'object' && b.value
        && typeof a.value.homePage === 'string' && a.value.homePage === b.value.homePage
        && typeof a.value.name === 'string' && a.value.name === b.value.name;
    }
    return typeof a.value === 'string' && a.value === b.value;
  }

  /** AUDIT.md 7.1. */
  function showsCompletion(s, agent, activity) {
    const verb = s.verb && s.verb.id;
    const result = s.result || {};
    const ok = (verb === COMPLETED && (result.completion === undefined || result.completion === true))
      || (verb === PASSED && (result.success === undefined || result.success === true));
    const object = s.object || {};
    const isActivity = (object.objectType === undefined || object.objectType === 'Activity') && object.id === activity;
    const actor = s.actor || {};
    const isAgent = actor.objectType === undefined || actor.objectType === 'Agent';
    return ok && isActivity && isAgent && sameIfi(ifiOf(actor), ifiOf(agent));
  }

  /** What 7.3 prescribes for credentialSubject.id / .identifier. */
  function subjectOf(agent) {
    const ifi = ifiOf(agent);
    switch (ifi && ifi.kind) {
      case 'mbox': case 'openid': return { id: ifi.value };
      case 'mbox_sha1sum':
        return { identifier: [{ type: 'IdentityObject', identityType: 'emailAddress', hashed: true, identityHash: `sha1$${ifi.value}` }] };
      case 'account':
        return { identifier: [{ type: 'IdentityObject', identityType: 'ext:xapiAccount', hashed: false, identityHash: `${ifi.value.homePage} ${ifi.value.name}` }] };
      default: return {};
    }
  }

  const DEPARTMENT = /^$|^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?(?:\/[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?){0,7}$/;
  const same = (a, b) => {
    try { return canonical(a) === canonical(b); } catch (_) { return false; }
  };

  /** A person's name for an agent: the name, else the e-mail address, else the account. */
  function describeAgent(agent) {
    const ifi = ifiOf(agent);
    if (!ifi) return 'an unnamed learner';
    if (ifi.kind === 'mbox') return String(ifi.value).replace(/^mailto:/, '');
    if (ifi.kind === 'account') return `${ifi.value.name} (account at ${ifi.value.homePage})`;
    if (ifi.kind === 'openid') return String(ifi.value);
    return `the learner with e-mail hash ${ifi.value}`;
  }

  async function verify(bytes, vkeyText) {
    const failures = [];
    const facts = {};
    const fail = (m) => { failures.push(m); };
    const done = () => ({ ok: failures.length === 0, failures, facts });

    // 1. Form.
    let body = bytes;
    if (body.length && body[body.length - 1] === 10) body = body.slice(0, -1);
    let text;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(body);
    } catch (_) {
      fail('The file is not text (UTF-8): it is not a certificate, or it was damaged.');
      return done();
    }
    let cert;
    try {
      cert = JSON.parse(text);
    } catch (_) {
      fail('The file is not a certificate: it is not valid JSON.');
      return done();
    }
    if (!cert || typeof cert !== 'object' || Array.isArray(cert)) {
      fail('The file is not a certificate: it is not a JSON object.');
      return done();
    }
    let canon = null;
    try { canon = canonical(cert); } catch (_) { /* reported below */ }
    if (canon !== text) {
      fail('The file has been changed: it is no longer exactly as the LRS wrote it (its canonical JSON form differs).');
    }
    const members = ['activity', 'agent', 'checkpoint', 'credential', 'format', 'statements', 'verifierKey'];
    if (!same(Object.keys(cert).sort(), members)) {
      fail(`The certificate does not have exactly the parts it should (${members.join(', ')}).`);
    }
    if (cert.format !== FORMAT) fail(`The file is not a certificate of the form ${FORMAT}.`);

    // 2. Key.
    let vkey;
    try {
      vkey = await parseVkey(vkeyText);
    } catch (e) {
      fail(`The log's key cannot be used: ${e.message}.`);
      return done();
    }
    if (cert.verifierKey !== vkey.text) {
      fail('The certificate names another log key than the one you are checking against.');
    }

    // 3. Checkpoint.
    let checkpoint = null;
    try {
      checkpoint = parseCheckpoint(await openNote(String(cert.checkpoint || ''), vkey));
      if (checkpoint.origin !== vkey.name) {
        fail('The checkpoint belongs to another log than the key\'s.');
      }
      facts.origin = checkpoint.origin;
      facts.treeSize = checkpoint.size.toString();
    } catch (e) {
      fail(`The log's signed checkpoint does not check out: ${e.message}.`);
    }

    // 4. Agent and activity.
    const agentIfi = ifiOf(cert.agent);
    if (!agentIfi || !same(Object.keys(cert.agent).sort(), ['objectType', agentIfi.kind].sort()) || cert.agent.objectType !== 'Agent') {
      fail('The certificate does not name one learner in the expected form.');
    }
    if (typeof cert.activity !== 'string') fail('The certificate does not name an activity.');
    facts.learner = describeAgent(cert.agent);
    facts.activity = cert.activity;
    const statements = Array.isArray(cert.statements) ? cert.statements : [];
    if (statements.length === 0) fail('The certificate carries no statement.');

    // 5. Each statement.
    const seen = new Set();
    const times = [];
    facts.leaves = [];
    for (const [i, item] of statements.entries()) {
      const n = i + 1;
      if (!item || typeof item !== 'object' || !same(Object.keys(item).sort(), ['department', 'leafIndex', 'salt', 'statement', 'tlogProof'])) {
        fail(`Statement ${n} is not in the expected form.`);
        continue;
      }
      const s = item.statement;
      if (!s || typeof s !== 'object' || typeof s.id !== 'string') {
        fail(`Statement ${n} has no id.`);
        continue;
      }
      if (!Number.isSafeInteger(item.leafIndex) || item.leafIndex < 0 || seen.has(item.leafIndex)) {
        fail(`Statement ${n} has an invalid or repeated leaf index.`);
        continue;
      }
      seen.add(item.leafIndex);
      facts.leaves.push(item.leafIndex);
      const salt = typeof item.salt === 'string' && item.salt.length === 64 ? fromHex(item.salt) : null;
      if (!salt) fail(`Statement ${n}: its salt is malformed.`);
      if (typeof item.department !== 'string' || !DEPARTMENT.test(item.department)) {
        fail(`Statement ${n}: its department is malformed.`);
      }
      const stored = parseTime(s.stored);
      if (!stored) fail(`Statement ${n}: its stored time is missing or malformed.`);
      const when = parseTime(s.timestamp) || stored;
      if (when) times.push(when);
      const proof = parseTlogProof(item.tlogProof);
      if (!proof) {
        fail(`Statement ${n}: its inclusion proof is malformed.`);
      } else {
        if (proof.index !== BigInt(item.leafIndex)) fail(`Statement ${n}: its proof is for another leaf.`);
        if (proof.checkpoint !== cert.checkpoint) fail(`Statement ${n}: its proof names another checkpoint.`);
      }
      if (salt && stored && proof && checkpoint && typeof item.department === 'string') {
        let jcs;
        try { jcs = encoder.encode(canonical(s)); } catch (_) { jcs = null; }
        if (!jcs) {
          fail(`Statement ${n} cannot be put in canonical form.`);
        } else {
          const leaf = await leafHash(jcs, salt, item.department, micros(stored));
          const root = await inclusionRoot(BigInt(item.leafIndex), checkpoint.size, leaf, proof.hashes);
          if (!root || !equalBytes(root, checkpoint.root)) {
            fail(`Statement ${n} (${s.id}) is not the one the log recorded: it, its salt or its department was changed, or its proof is wrong.`);
          }
        }
      }
      if (!showsCompletion(s, cert.agent, cert.activity)) {
        fail(`Statement ${n} (${s.id}) does not show that this learner completed or passed this activity.`);
      }
    }

    // 6. Credential.
    const parts = typeof cert.credential === 'string' ? cert.credential.split('.') : [];
    if (parts.length !== 3) {
      fail('The badge credential is malformed.');
      return done();
    }
    const [h, p, sig] = parts.map(fromBase64Url);
    let header = null;
    let payload = null;
    try {
      header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(h));
      payload = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(p));
    } catch (_) {
      fail('The badge credential cannot be read.');
      return done();
    }
    const expectedHeader = { alg: 'EdDSA', jwk: { crv: 'Ed25519', kty: 'OKP', x: toBase64Url(vkey.pub) }, typ: 'JWT' };
    if (!same(header, expectedHeader)) fail('The badge credential names another key or algorithm.');
    if (!sig || !(await ed25519(vkey, sig, encoder.encode(`${parts[0]}.${parts[1]}`)))) {
      fail('The badge credential\'s signature does not verify with the log\'s key.');
    }
    if (!payload || typeof payload !== 'object') {
      fail('The badge credential has no content.');
      return done();
    }
    if (!same(payload['@context'], ['https://www.w3.org/ns/credentials/v2', 'https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json'])
      || !same(payload.type, ['VerifiableCredential', 'OpenBadgeCredential'])) {
      fail('The badge credential is not an Open Badges 3.0 credential.');
    }
    if (typeof payload.id !== 'string' || !payload.id.startsWith('urn:uuid:') || payload.jti !== payload.id) {
      fail('The badge credential\'s id is malformed.');
    }
    const issuer = payload.issuer && payload.issuer.id;
    if (typeof issuer !== 'string' || payload.iss !== issuer) fail('The badge credential\'s issuer is malformed.');
    facts.issuer = issuer;
    if (times.length) {
      const first = times.reduce((a, b) => (earlier(b, a) ? b : a));
      facts.completedAt = formatTime(first);
      if (payload.validFrom !== facts.completedAt || payload.nbf !== Number(first.seconds)) {
        fail('The badge credential gives another completion time than the statements.');
      }
    }
    if (!parseTime(payload.awardedDate)) fail('The badge credential\'s award date is malformed.');
    facts.awardedDate = payload.awardedDate;
    const subject = payload.credentialSubject || {};
    const wanted = subjectOf(cert.agent);
    if (!same(subject.id === undefined ? null : subject.id, wanted.id === undefined ? null : wanted.id)
      || !same(subject.identifier === undefined ? null : subject.identifier, wanted.identifier === undefined ? null : wanted.identifier)
      || payload.sub !== subject.id
      || !same(subject.type, ['AchievementSubject'])) {
      fail('The badge credential names another learner.');
    }
    const achievement = subject.achievement || {};
    if (achievement.id !== cert.activity || !same(achievement.type, ['Achievement'])) {
      fail('The badge credential names another activity.');
    }
    facts.achievement = typeof achievement.name === 'string' ? achievement.name : cert.activity;
    const evidence = statements.map((item) => {
      const id = item && item.statement && item.statement.id;
      return {
        id: `urn:uuid:${id}`,
        type: ['Evidence'],
        name: `xAPI statement ${id}`,
        description: `Logged at leaf index ${item && item.leafIndex} of the transparency log ${checkpoint ? checkpoint.origin : ''}; the narrative is its c2sp.org/tlog-proof@v1 inclusion proof.`,
        narrative: item && item.tlogProof,
      };
    });
    if (!same(payload.evidence, evidence)) fail('The badge credential\'s evidence does not match the statements.');
    return done();
  }

  window.CertVerify = {
    verify, canonical, describeAgent, parseTime, leafHash, micros, fromHex, hex,
  };
}());
