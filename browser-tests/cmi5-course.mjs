// A cmi5 course in a real browser (issue 15): the AU of browser-tests/cmi5-au, uploaded by
// conformance-tests/scorm_browser.rs (CMI5_PACKAGE_ID), is launched through the LRS, opens
// on the content origin, fetches its auth token, reads LMS.LaunchData and reports; the
// statements are then checked through the xAPI API. A second launch that the learner
// abandons by closing the page must still end with `terminated`.
import { run, openPage, DESKTOP, PHONE, lrs, expect, screenshot, checkAccessibility } from './lib/browser.mjs';
import { randomUUID } from 'node:crypto';

const packageId = process.env.CMI5_PACKAGE_ID;
expect(packageId, 'CMI5_PACKAGE_ID is not set');
const name = `learner-${randomUUID().slice(0, 8)}`;
const actor = { objectType: 'Agent', name, account: { homePage: 'https://igot.example.gov.in', name } };

async function api(method, path, body) {
  const r = await fetch(`${lrs.base}${path}`, {
    method,
    headers: {
      Authorization: lrs.authorization,
      'X-Experience-API-Version': '2.0.0',
      ...(body ? { 'Content-Type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  expect(r.ok, () => `${method} ${path} answered ${r.status}: ${text}`);
  return text ? JSON.parse(text) : null;
}

const verbOf = (s) => s.verb.id.split('/').pop();

async function statements(registration) {
  const q = new URLSearchParams({ registration, limit: '100', ascending: 'true' });
  return (await api('GET', `/xapi/statements?${q}`)).statements;
}

async function waitFor(registration, what, ok) {
  const until = Date.now() + 15_000;
  let list = [];
  while (Date.now() < until) {
    list = await statements(registration);
    if (ok(list.map(verbOf))) return list;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}: ${list.map(verbOf).join(', ') || '(nothing)'}`);
}

run('cmi5 AU through the LRS', async (browser) => {
  // A learner who finishes: passed with 90 %.
  const registration = randomUUID();
  const launch = await api('POST', `/scorm/packages/${packageId}/launch`, { actor, registration });
  expect(!launch.playerUrl.startsWith(lrs.base), `the AU is not on an origin of its own: ${launch.playerUrl}`);
  const url = new URL(launch.playerUrl);
  for (const p of ['endpoint', 'fetch', 'actor', 'registration', 'activityId']) {
    expect(url.searchParams.get(p), `the launch URL has no ${p}`);
  }
  const page = await openPage(browser, DESKTOP);
  await page.goto(launch.playerUrl);
  await page.waitForSelector('body[data-state="ready"]');
  await checkAccessibility(page, { label: 'cmi5 AU' });
  await screenshot(page, 'cmi5-ready');
  await page.fill('#score', '90');
  await page.click('#finish');
  await page.waitForSelector('body[data-state="done"]');
  await page.click('#exit');
  let list = await waitFor(registration, 'terminated', (v) => v.includes('terminated'));
  let verbs = list.map(verbOf);
  expect(JSON.stringify(verbs) === JSON.stringify(['launched', 'initialized', 'completed', 'passed', 'terminated']),
    `statements in order: ${verbs.join(', ')}`);
  const passed = list.find((s) => verbOf(s) === 'passed');
  expect(passed.result.score.scaled === 0.9 && passed.result.success === true, `passed: ${JSON.stringify(passed.result)}`);
  expect(list.every((s) => s.actor.account.name === name), 'a statement about someone else');
  const session = list[0].context.extensions['https://w3id.org/xapi/cmi5/context/extensions/sessionid'];
  expect(session && list.every((s) => s.context.extensions && s.context.extensions['https://w3id.org/xapi/cmi5/context/extensions/sessionid'] === session),
    'every statement carries the session id of the launch');

  // Another registration, the page closed without Exit: `terminated` still arrives.
  const other = randomUUID();
  const second = await api('POST', `/scorm/packages/${packageId}/launch`, { actor, registration: other });
  const page2 = await openPage(browser, PHONE);
  await page2.goto(second.playerUrl);
  await page2.waitForSelector('body[data-state="ready"]');
  await screenshot(page2, 'cmi5-ready-phone');
  await page2.close({ runBeforeUnload: true });
  list = await waitFor(other, 'terminated after the page closed', (v) => v.includes('terminated'));
  verbs = list.map(verbOf);
  expect(verbs[0] === 'launched' && verbs[1] === 'initialized', `statements: ${verbs.join(', ')}`);
  console.log(`statements: ${verbs.join(', ')}`);
});
