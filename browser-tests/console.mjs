// The console (/console) in a real browser, on a phone and a desktop: sign in with a
// department's credential, every page (departments, completions, statements, verify,
// packages) accessible, no sideways scrolling, no console error or CSP violation; the
// figures on the page equal the API's; a certificate fetched from the LRS verifies in the
// page and a tampered one does not; the CSV download is the API's CSV; a credential made
// in the page works and can be revoked; signing out ends the session; a sibling
// department's credential never sees this department's records.
import { readFileSync } from 'node:fs';
import {
  run, openPage, PHONE, DESKTOP, lrs, expect, required, checkAccessibility,
  assertNoHorizontalScroll, assertNoProblems, clearProblems, screenshot,
} from './lib/browser.mjs';

const KEY = required('CONSOLE_KEY');
const SECRET = required('CONSOLE_SECRET');
const SIBLING_KEY = required('SIBLING_KEY');
const SIBLING_SECRET = required('SIBLING_SECRET');
const COURSE = 'https://igot.gov.in/course/ethics-in-governance';
const LEARNERS = [
  { email: 'asha.rao@example.gov.in', verb: 'completed', result: { completion: true, success: true, score: { scaled: 0.9 } } },
  { email: 'vikram.singh@example.gov.in', verb: 'passed', result: { success: true, score: { scaled: 0.7 } } },
  { email: 'meera.iyer@example.gov.in', verb: 'failed', result: { success: false, score: { scaled: 0.3 } } },
];
const SIBLING_LEARNER = 'only.in.health@example.gov.in';
const NO_SESSION = /HTTP 401: GET .*\/console\/session$/;
const LOGGED_401 = /console error: Failed to load resource.*401/;

const basic = (key, secret) => `Basic ${Buffer.from(`${key}:${secret}`).toString('base64')}`;

async function call(path, { key = KEY, secret = SECRET, method = 'GET', body, accept } = {}) {
  const headers = { Authorization: basic(key, secret), 'X-Experience-API-Version': '2.0.0' };
  if (body) headers['Content-Type'] = 'application/json';
  if (accept) headers.Accept = accept;
  return fetch(`${lrs.base}${path}`, { method, headers, body: body && JSON.stringify(body) });
}

async function postStatements() {
  const now = new Date().toISOString();
  const statements = LEARNERS.map((l) => ({
    actor: { objectType: 'Agent', mbox: `mailto:${l.email}` },
    verb: { id: `http://adlnet.gov/expapi/verbs/${l.verb}`, display: { 'en-US': l.verb } },
    object: { id: COURSE, definition: { name: { 'en-US': 'Ethics in Governance' } } },
    result: l.result,
    timestamp: now,
  }));
  let r = await call('/xapi/statements', { method: 'POST', body: statements });
  expect(r.status === 200, `POST statements answered ${r.status}: ${await r.text()}`);
  r = await call('/xapi/statements', {
    key: SIBLING_KEY,
    secret: SIBLING_SECRET,
    method: 'POST',
    body: {
      actor: { mbox: `mailto:${SIBLING_LEARNER}` },
      verb: { id: 'http://adlnet.gov/expapi/verbs/completed' },
      object: { id: COURSE },
    },
  });
  expect(r.status === 200, `POST sibling statement answered ${r.status}`);
}

async function poll(what, fn, seconds = 40) {
  const until = Date.now() + seconds * 1000;
  for (;;) {
    const v = await fn();
    if (v) return v;
    expect(Date.now() < until, `${what} did not happen within ${seconds} s`);
    await new Promise((ok) => { setTimeout(ok, 300); });
  }
}

async function certificate() {
  const agent = encodeURIComponent(JSON.stringify({ mbox: `mailto:${LEARNERS[0].email}` }));
  return poll('a completion certificate', async () => {
    const r = await call(`/audit/certificate?agent=${agent}&activity=${encodeURIComponent(COURSE)}`);
    return r.status === 200 ? Buffer.from(await r.arrayBuffer()) : null;
  });
}

async function figures() {
  return poll('the completion figures', async () => {
    const r = await call(`/analytics/completions?activity=${encodeURIComponent(COURSE)}&group_by=day`);
    const data = await r.json();
    return data.projectedThrough >= data.logSize && data.totals.attempted >= 3 ? data : null;
  });
}

async function signIn(page, key, secret) {
  await page.goto(`${lrs.base}/console`);
  await page.locator('#signin-key').waitFor({ state: 'visible' });
  await page.fill('#signin-key', key);
  await page.fill('#signin-secret', secret);
  await page.click('#signin-form button[type="submit"]');
  await page.locator('#who').waitFor({ state: 'visible' });
}

async function check(page, name, label) {
  await checkAccessibility(page, { label: `${name} (${label})` });
  await assertNoHorizontalScroll(page);
  await screenshot(page, `console-${name}-${label}`);
}

async function showView(page, name) {
  await page.click(`nav a[href="#/${name}"]`);
  await page.locator(`#view-${name}`).waitFor({ state: 'visible' });
  const focused = await page.evaluate(() => document.activeElement && document.activeElement.tagName);
  expect(focused === 'H1', `after opening ${name} the focus is on ${focused}, not the page's heading`);
}

async function searchStatements(page) {
  await page.click('#statements-form button[type="submit"]');
  await page.locator('#statements-result').waitFor({ state: 'visible' });
  return page.locator('#statements-table tbody').innerText();
}

async function verifyCertificate(page, name, buffer) {
  await page.setInputFiles('#verify-file', { name, mimeType: 'application/json', buffer });
  await page.locator('#verify-result h2').waitFor({ state: 'visible' });
  return { heading: await page.locator('#verify-result h2').innerText(), text: await page.locator('#verify-result').innerText() };
}

run('console pages', async (browser) => {
  await postStatements();
  const cert = await certificate();
  const api = await figures();
  const apiCsv = await (await call(`/analytics/completions?activity=${encodeURIComponent(COURSE)}&group_by=day`, { accept: 'text/csv' })).text();

  for (const [label, viewport] of [['phone', PHONE], ['desktop', DESKTOP]]) {
    const page = await openPage(browser, viewport);
    page.on('dialog', (d) => d.accept());
    const res = await page.goto(`${lrs.base}/console`);
    expect(res.status() === 200, `GET /console answered ${res.status()}`);
    await page.locator('#view-signin').waitFor({ state: 'visible' });
    expect(await page.locator('h1:visible').innerText() === 'Sign in to the console', 'no sign-in heading');

    // A wrong secret: said in words, in an alert, and no session.
    await page.fill('#signin-key', KEY);
    await page.fill('#signin-secret', 'not-the-secret');
    await page.click('#signin-form button[type="submit"]');
    await page.locator('#signin-error:not(:empty)').waitFor();
    const error = await page.locator('#signin-error').innerText();
    expect(/key or the secret is not right/.test(error), `sign-in error reads "${error}"`);
    expect(await page.getAttribute('#signin-error', 'role') === 'alert', 'the sign-in error is not an alert');
    await check(page, 'signin', label);
    await assertNoProblems(page, { allow: [NO_SESSION, /HTTP 401: POST .*\/console\/session$/, LOGGED_401] });

    await page.fill('#signin-secret', SECRET);
    await page.click('#signin-form button[type="submit"]');
    await page.locator('#view-departments').waitFor({ state: 'visible' });
    expect((await page.locator('#who').innerText()).includes('moe'), 'the header does not name the department');

    // Departments: the tree of this credential, nothing of the sibling.
    await page.locator('#department-tree li').first().waitFor();
    const tree = await page.locator('#department-tree').innerText();
    expect(tree.includes('moe') && !tree.includes('mohfw'), `department tree: ${tree}`);
    await check(page, 'departments', label);

    // Statements: this department's, newest first; one opened shows its exact JSON and
    // its place in the audit log.
    await showView(page, 'statements');
    const rows = await searchStatements(page);
    for (const l of LEARNERS) expect(rows.includes(l.email), `statements list lacks ${l.email}: ${rows}`);
    expect(!rows.includes(SIBLING_LEARNER), 'a sibling department\'s statement is listed');
    await page.locator('#statements-table button.open').first().click();
    await page.locator('#statement-detail').waitFor({ state: 'visible' });
    const json = JSON.parse(await page.locator('#statement-json').innerText());
    expect(json.id && json.stored && json.authority, `statement JSON: ${JSON.stringify(json)}`);
    const facts = await page.locator('#statement-facts').innerText();
    expect(/In the audit log at leaf \d+/.test(facts), `audit status: ${facts}`);
    expect(/Voided\s+No/.test(facts), `voided status: ${facts}`);
    await check(page, 'statements', label);

    // Completions: the same figures as the API, a chart of them.
    await showView(page, 'completions');
    await page.fill('#completions-activity', COURSE);
    await page.click('#completions-form button[type="submit"]');
    await page.locator('#completions-result').waitFor({ state: 'visible' });
    for (const k of ['attempted', 'completed', 'passed', 'failed', 'scored']) {
      const shown = await page.locator(`#completions-totals dd[data-figure="${k}"]`).innerText();
      expect(shown === String(api.totals[k]), `${k}: page says ${shown}, the API ${api.totals[k]}`);
    }
    const avg = await page.locator('#completions-totals dd[data-figure="averageScaledScore"]').innerText();
    expect(avg === `${Math.round(api.totals.averageScaledScore * 1000) / 10}%`, `average: page ${avg}, API ${api.totals.averageScaledScore}`);
    expect(await page.locator('#completions-table tbody tr').count() === api.rows.length, 'not one table row per API row');
    expect(await page.locator('#completions-charts svg rect').count() >= 3, 'no bars in the charts');
    await check(page, 'completions', label);

    // Verify: the LRS's certificate verifies here, in the page.
    await showView(page, 'verify');
    await page.locator('#verify-vkey').waitFor();
    await poll('the verifier key in the form', async () => (await page.inputValue('#verify-vkey')).includes('+'), 10);
    const good = await verifyCertificate(page, 'certificate.json', cert);
    expect(good.heading === 'Verified', `good certificate: ${good.text}`);
    expect(good.text.includes(LEARNERS[0].email) && good.text.includes('Ethics in Governance'), `the verdict does not say who and what: ${good.text}`);
    await check(page, 'verify-good', label);

    // Packages: the list (content scope).
    await showView(page, 'packages');
    await page.locator('#packages-table tbody tr').first().waitFor();
    await check(page, 'packages', label);
    await assertNoProblems(page);

    if (label === 'desktop') {
      // A tampered certificate: one byte of the learner's address changed.
      await showView(page, 'verify');
      const text = cert.toString('utf8');
      const at = text.lastIndexOf('asha.rao') + 1; // inside the certified statement
      const tampered = Buffer.from(text.slice(0, at) + 'z' + text.slice(at + 1), 'utf8');
      const bad = await verifyCertificate(page, 'tampered.json', tampered);
      expect(bad.heading === 'Not verified', `tampered certificate: ${bad.text}`);
      expect(/not the one the log recorded/.test(bad.text), `the failure does not say why: ${bad.text}`);
      expect(await page.getAttribute('#verify-result', 'role') === 'alert', 'the failure is not announced');
      await check(page, 'verify-tampered', label);

      // CSV: exactly the API's.
      await showView(page, 'completions');
      await page.fill('#completions-activity', COURSE);
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#completions-csv')]);
      const csv = readFileSync(await download.path(), 'utf8');
      expect(csv === apiCsv, `CSV differs:\n${csv}\n---\n${apiCsv}`);

      // A sub-department and a credential in it, made in the page; the secret works once
      // copied, and revoking it from the page ends it.
      await showView(page, 'departments');
      await page.fill('#department-path', 'moe/dhe');
      await page.click('#department-form button[type="submit"]');
      await page.locator('#department-tree .path', { hasText: 'moe/dhe' }).waitFor();
      await page.fill('#credential-name', 'Ethics course player');
      await page.selectOption('#credential-department', 'moe/dhe');
      await page.check('#scope-statements-read');
      await page.click('#credential-form button[type="submit"]');
      await page.locator('#credential-issued').waitFor({ state: 'visible' });
      const newKey = await page.inputValue('#issued-key');
      const newSecret = await page.inputValue('#issued-secret');
      let r = await call('/xapi/statements', { key: newKey, secret: newSecret });
      expect(r.status === 200, `the new credential answers ${r.status}`);
      await check(page, 'credential-issued', label);
      await page.locator(`#credentials-table button[data-key="${newKey}"]`).click();
      await page.locator(`#credentials-table tr.revoked`, { hasText: newKey }).waitFor();
      r = await call('/xapi/statements', { key: newKey, secret: newSecret });
      expect(r.status === 401 || r.status === 200, `revoked credential answers ${r.status}`);
      await assertNoProblems(page);

      // Sign out: the session is gone, a reload shows the sign-in page.
      await page.click('#sign-out');
      await page.locator('#view-signin').waitFor({ state: 'visible' });
      await page.reload();
      await page.locator('#view-signin').waitFor({ state: 'visible' });
      expect(await page.locator('#who').isHidden(), 'still signed in after signing out');
      await assertNoProblems(page, { allow: [NO_SESSION, LOGGED_401] });
    }
    clearProblems(page);
    await page.context().close();
  }

  // The sibling department: its own records only.
  const page = await openPage(browser, DESKTOP);
  await signIn(page, SIBLING_KEY, SIBLING_SECRET);
  await page.locator('#department-tree li').first().waitFor();
  const tree = await page.locator('#department-tree').innerText();
  expect(tree.includes('mohfw') && !tree.includes('moe'), `sibling's tree: ${tree}`);
  await showView(page, 'statements');
  const rows = await searchStatements(page);
  expect(rows.includes(SIBLING_LEARNER), `the sibling does not see its own statement: ${rows}`);
  for (const l of LEARNERS) expect(!rows.includes(l.email), `the sibling sees ${l.email}`);
  await page.fill('#statement-id', 'not-a-statement');
  await page.click('#statement-lookup button');
  await page.locator('#statements-error:not(:empty)').waitFor();
  await assertNoProblems(page, { allow: [NO_SESSION, LOGGED_401, /HTTP 400: GET .*statements/, /console error: Failed to load resource.*400/] });
  await page.context().close();
});
