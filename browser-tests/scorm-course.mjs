// A SCORM course in a real browser against the LRS (issue 15). The package was uploaded by
// the Rust test (conformance-tests/scorm_browser.rs), which names it in SCORM_PACKAGE_ID;
// SCORM_FLOW says what the course can do:
// - `minimal`: it only calls Initialize and Finish: launch, close the page, and the
//   session's statements (initialized, terminated) must have arrived;
// - `golf`: the golf examples (1.2 and 2004, basic and advanced): page through, close the
//   page abruptly (the final commit must arrive), relaunch and resume where it stopped,
//   finish the pages, pass the assessment, exit; then statements and documents are checked
//   through the xAPI API.
import {
  run, openPage, DESKTOP, PHONE, lrs, expect, screenshot, assertNoHorizontalScroll,
} from './lib/browser.mjs';
import { randomUUID } from 'node:crypto';

const packageId = process.env.SCORM_PACKAGE_ID;
const flow = process.env.SCORM_FLOW || 'golf';
const version = process.env.SCORM_VERSION || '1.2';
const expectResponded = process.env.SCORM_EXPECT_RESPONDED === '1';
expect(packageId, 'SCORM_PACKAGE_ID is not set');

const learnerName = `learner-${randomUUID().slice(0, 8)}`;
const actor = {
  objectType: 'Agent',
  name: learnerName,
  account: { homePage: 'https://igot.example.gov.in', name: learnerName },
};
const registration = randomUUID();

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

async function launchCourse() {
  return api('POST', `/scorm/packages/${packageId}/launch`, { actor, registration });
}

async function statements() {
  const q = new URLSearchParams({ registration, limit: '200', ascending: 'true' });
  return (await api('GET', `/xapi/statements?${q}`)).statements;
}

const verbOf = (s) => s.verb.id.split('/').pop();

/** Polls the LRS until `ok(statements)` holds (commits travel asynchronously). */
async function waitFor(what, ok, ms = 15_000) {
  const until = Date.now() + ms;
  let list = [];
  while (Date.now() < until) {
    list = await statements();
    if (ok(list)) return list;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}; the registration has: ${list.map(verbOf).join(', ') || '(nothing)'}`);
}

/** The course's own page inside the player. */
async function coursePage(page) {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const f = page.frames().find((fr) => /\/launchpage\.html/.test(fr.url()));
    if (f) {
      await f.waitForSelector('#butNext', { state: 'visible' }).catch(() => {});
      return f;
    }
    await page.waitForTimeout(100);
  }
  throw new Error(`the course did not load in the player: frames ${page.frames().map((f) => f.url()).join(', ')}`);
}

/** The page the course shows inside its own frame. */
function innerPage(page) {
  return page.frames().find((fr) => /\/(Playing|Etiquette|Handicapping|HavingFun|shared\/assessment)/.test(fr.url()));
}

async function next(page, course, times) {
  for (let i = 0; i < times; i++) {
    await course.click('#butNext');
    await page.waitForTimeout(150);
  }
}

/** Answers every question of the golf assessment correctly, as a learner would. */
async function passAssessment(page) {
  let test;
  for (let i = 0; i < 50 && !test; i++) {
    test = page.frames().find((fr) => /assessmenttemplate\.html/.test(fr.url()));
    if (!test) await page.waitForTimeout(100);
  }
  expect(test, 'the assessment page did not open');
  await test.waitForSelector('input[type=button]');
  const answers = await test.evaluate(() =>
    // eslint-disable-next-line no-undef
    test.Questions.map((q) => {
      if (q.Type === 'choice') return { check: `question_${q.Id}_${q.Answers.indexOf(q.CorrectAnswer)}` };
      if (q.Type === 'true-false') return { check: `question_${q.Id}_${q.CorrectAnswer ? 'True' : 'False'}` };
      return { fill: `question_${q.Id}_Text`, value: String(q.CorrectAnswer) };
    }));
  for (const a of answers) {
    if (a.check) await test.check(`[id="${a.check}"]`);
    else await test.fill(`[id="${a.fill}"]`, a.value);
  }
  await test.click('input[type=button]');
  return answers.length;
}

run(`SCORM ${version} course (${flow}) through the player`, async (browser) => {
  const first = await launchCourse();
  expect(first.playerUrl && !first.playerUrl.startsWith(lrs.base), `the player is not on an origin of its own: ${first.playerUrl}`);
  const page = await openPage(browser, DESKTOP);
  page.on('dialog', (d) => d.accept());
  await page.goto(first.playerUrl);
  expect(await page.locator('h1').count() === 1, 'the player has no title');
  await waitFor('initialized', (l) => l.some((s) => verbOf(s) === 'initialized'));

  if (flow === 'minimal') {
    await screenshot(page, `minimal-${version}`);
    // Closed without a word: the course's unload handler calls Finish, which leaves by
    // beacon.
    await page.close({ runBeforeUnload: true });
    const list = await waitFor('terminated', (l) => l.some((s) => verbOf(s) === 'terminated'));
    expect(verbOf(list[0]) === 'initialized', `first statement: ${verbOf(list[0])}`);
    return;
  }

  const course = await coursePage(page);
  await next(page, course, 3);
  await screenshot(page, `golf-${version}-page-4`);
  // Abrupt close in the middle: the runtime's last commit must still arrive.
  await page.close({ runBeforeUnload: true });
  let list = await waitFor('suspended after the page closed', (l) => l.some((s) => verbOf(s) === 'suspended'));
  const suspended = list.find((s) => verbOf(s) === 'suspended');
  expect(suspended.result && /^PT/.test(suspended.result.duration || ''), `suspended has no duration: ${JSON.stringify(suspended.result)}`);
  for (const s of list) {
    expect(s.actor.account.name === learnerName, `a statement about someone else: ${JSON.stringify(s.actor)}`);
    expect(s.context.registration === registration, 'a statement outside the registration');
  }

  // Relaunch: the course offers to resume (accepted) and opens the page it was on.
  const again = await launchCourse();
  const session = await (await fetch(again.playerUrl.replace('/player/', '/session/').replace(/\/$/, ''))).json();
  expect(session.model[version === '1.2' ? 'cmi.core.entry' : 'cmi.entry'] === 'resume', `entry: ${JSON.stringify(session.model)}`);
  expect(session.model[version === '1.2' ? 'cmi.core.lesson_location' : 'cmi.location'] === '3', 'the location was not restored');
  const page2 = await openPage(browser, PHONE);
  page2.on('dialog', (d) => d.accept());
  await page2.goto(again.playerUrl);
  const course2 = await coursePage(page2);
  await page2.waitForTimeout(500);
  const inner = innerPage(page2);
  expect(inner && /OtherScoring\.html/.test(inner.url()), `after resume the course shows ${inner && inner.url()}`);
  await assertNoHorizontalScroll(page2).catch(() => {}); // the course's own layout is not ours
  await screenshot(page2, `golf-${version}-resumed-phone`);
  await waitFor('resumed', (l) => l.some((s) => verbOf(s) === 'resumed'));

  // To the end, the assessment passed, then Exit.
  await next(page2, course2, 11);
  const questions = await passAssessment(page2);
  await page2.waitForTimeout(300);
  await screenshot(page2, `golf-${version}-assessment`);
  await course2.click('#butExit');
  list = await waitFor('terminated and passed', (l) =>
    l.some((s) => verbOf(s) === 'terminated') && l.some((s) => verbOf(s) === 'passed'));
  const passed = list.find((s) => verbOf(s) === 'passed');
  expect(passed.result.success === true, `passed: ${JSON.stringify(passed.result)}`);
  expect(passed.result.score && passed.result.score.scaled === 1, `score: ${JSON.stringify(passed.result.score)}`);
  const verbs = list.map(verbOf);
  for (const v of ['initialized', 'suspended', 'resumed', 'passed', 'terminated']) {
    expect(verbs.includes(v), `no ${v} among ${verbs.join(', ')}`);
  }
  if (version === '2004') {
    expect(verbs.includes('completed'), `no completed among ${verbs.join(', ')}`);
  }
  if (expectResponded) {
    const responded = list.filter((s) => verbOf(s) === 'responded');
    expect(responded.length >= questions, `${responded.length} responded for ${questions} questions`);
    const def = responded[0].object.definition;
    expect(def && def.interactionType && def.type === 'http://adlnet.gov/expapi/activities/cmi.interaction',
      `interaction definition: ${JSON.stringify(def)}`);
  }
  // The profile's activity state lists the attempt.
  const q = new URLSearchParams({
    activityId: again.activityId,
    agent: JSON.stringify(actor),
    stateId: 'https://w3id.org/xapi/scorm/activity-state',
  });
  const state = await api('GET', `/xapi/activities/state?${q}`);
  expect(Array.isArray(state.attempts) && state.attempts.length >= 1, `activity state: ${JSON.stringify(state)}`);
  console.log(`statements: ${verbs.join(', ')}`);
});
