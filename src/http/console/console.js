// The console: a small client-side router over the LRS's own APIs. Every call goes through
// `api()`, which sends the session's CSRF token; the server treats the cookie and the token
// together as the signed-in credential, so the page can do exactly what that credential may.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const state = { who: null, departments: null, more: null, statementsQuery: null, launchFor: null };
  const XAPI_VERSION = '2.0.0';
  const SCOPES = [
    ['statements/write', 'write statements'],
    ['statements/read', 'read all statements'],
    ['statements/read/mine', 'read its own statements'],
    ['all/read', 'read everything'],
    ['all', 'everything in xAPI'],
    ['state', 'learner state'],
    ['define', 'activity definitions'],
    ['profile', 'profiles'],
    ['admin', 'administer departments'],
    ['content', 'content packages'],
  ];
  const VIEWS = {
    signin: { title: 'Sign in', open: null, public: true },
    departments: { title: 'Departments', open: openDepartments, scope: (s) => s.includes('admin') },
    completions: { title: 'Completions', open: openCompletions, scope: readsAll },
    statements: { title: 'Statements', open: openStatements, scope: readsAny },
    verify: { title: 'Verify a certificate', open: openVerify, public: true },
    packages: { title: 'Packages', open: openPackages, scope: (s) => s.includes('admin') || s.includes('content') },
  };

  function readsAll(s) { return s.includes('all') || s.includes('all/read') || s.includes('statements/read'); }
  function readsAny(s) { return readsAll(s) || s.includes('statements/read/mine'); }

  class ConsoleError extends Error {
    constructor(message, status) { super(message); this.status = status; }
  }

  /** Words a training manager can act on, for an HTTP status and the server's message. */
  function friendly(status, detail) {
    const more = detail ? ` (The server said: ${detail})` : '';
    switch (status) {
      case 400: return `This request could not be accepted. Please check what you entered.${more}`;
      case 401: return 'The key or secret is not right, or your session has ended. Please sign in again.';
      case 403: return `Your credential is not allowed to do this.${more}`;
      case 404: return `Nothing was found.${more}`;
      case 409: return `This already exists.${more}`;
      case 413: return 'The file is too large for this server.';
      case 415: return `The server does not accept this kind of file.${more}`;
      case 429: case 503: return `The server is busy or not ready yet. Please try again in a few seconds.${more}`;
      default:
        if (status >= 500) return `Something went wrong on the server. Please try again; if it keeps happening, tell the server's operators.${more}`;
        return `The request failed (status ${status}).${more}`;
    }
  }

  /** Calls the LRS; throws ConsoleError with a plain sentence on failure. */
  async function api(path, { method = 'GET', json, body, headers = {}, accept, department } = {}) {
    const h = { ...headers };
    if (state.who) h['X-Console-CSRF'] = state.who.csrf;
    if (department) h['X-Department'] = department;
    if (accept) h.Accept = accept;
    let payload = body;
    if (json !== undefined) {
      h['Content-Type'] = 'application/json';
      payload = JSON.stringify(json);
    }
    let res;
    try {
      res = await fetch(path, { method, headers: h, body: payload, credentials: 'same-origin', cache: 'no-store' });
    } catch (_) {
      throw new ConsoleError('The server could not be reached. Check the network connection and try again.', 0);
    }
    if (!res.ok) {
      let detail = '';
      try { detail = (await res.json()).error.message || ''; } catch (_) { /* no JSON body */ }
      if (res.status === 401 && state.who && !path.startsWith('/console/session')) {
        signedOut('Your session has ended. Please sign in again.');
      }
      throw new ConsoleError(friendly(res.status, detail), res.status);
    }
    return res;
  }

  function announce(text) {
    const a = $('announce');
    a.textContent = '';
    window.setTimeout(() => { a.textContent = text; }, 50);
  }

  function showError(id, e) {
    $(id).textContent = e ? (e instanceof ConsoleError ? e.message : `Something went wrong in the page: ${e.message}`) : '';
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function make(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v; else if (k === 'text') e.textContent = v; else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }

  function when(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return iso;
    return d.toLocaleString('en-IN', { dateStyle: 'medium', timeStyle: 'short' });
  }

  function busy(form, on) {
    for (const b of form.querySelectorAll('button')) b.disabled = on;
    form.setAttribute('aria-busy', on ? 'true' : 'false');
  }

  // ---------------------------------------------------------------- session and router

  function setWho(who) {
    state.who = who;
    state.departments = null;
    const signedIn = Boolean(who);
    $('who').hidden = !signedIn;
    $('nav').hidden = !signedIn;
    if (who) {
      $('who-name').textContent = who.name || who.key;
      $('who-dept').textContent = who.department;
      for (const [name, v] of Object.entries(VIEWS)) {
        const li = $(`nav-${name}`);
        if (li) li.hidden = Boolean(v.scope) && !v.scope(who.scopes);
      }
    }
  }

  function signedOut(message) {
    setWho(null);
    location.hash = '#/signin';
    route();
    showError('signin-error', message ? new ConsoleError(message) : null);
  }

  function landing() {
    const s = state.who.scopes;
    if (s.includes('admin')) return 'departments';
    if (readsAll(s)) return 'completions';
    if (readsAny(s)) return 'statements';
    return 'verify';
  }

  function route() {
    const hash = location.hash.startsWith('#/') ? location.hash.slice(2) : null;
    if (hash === null && location.hash) return; // an in-page link such as #main
    let name = hash && VIEWS[hash] ? hash : null;
    if (!state.who) {
      if (name !== 'verify') name = 'signin';
    } else if (!name || name === 'signin') {
      name = landing();
    }
    for (const v of Object.keys(VIEWS)) $(`view-${v}`).hidden = v !== name;
    for (const a of document.querySelectorAll('nav a')) {
      if (a.getAttribute('href') === `#/${name}`) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    document.title = `${VIEWS[name].title}: Console: karmayogi-lrs`;
    if (`#/${name}` !== location.hash) history.replaceState(null, '', `#/${name}`);
    const h1 = document.querySelector(`#view-${name} h1`);
    if (route.started) h1.focus(); else route.started = true;
    if (VIEWS[name].open) {
      VIEWS[name].open().catch((e) => announce(e.message));
    }
  }

  async function start() {
    try {
      const res = await fetch('/console/session', { credentials: 'same-origin', cache: 'no-store' });
      if (res.ok) setWho(await res.json());
    } catch (_) { /* not signed in */ }
    window.addEventListener('hashchange', route);
    route();
    // A failed sign-in with the identity provider comes back as /console?oidc_error=…
    const failed = new URLSearchParams(location.search).get('oidc_error');
    if (failed !== null) {
      history.replaceState(null, '', '/console' + location.hash);
      if (!state.who) signedOut(OIDC_ERRORS[failed] || OIDC_ERRORS.refused);
    }
  }

  const OIDC_ERRORS = {
    provider: 'The identity provider cannot be reached now. Try again later, or sign in with a key and secret.',
    expired: 'The sign-in took too long or was started in another window. Please sign in again.',
    state: 'The answer of the identity provider does not belong to this sign-in. Please sign in again.',
    denied: 'The identity provider did not sign you in.',
    token: 'The identity provider did not hand over your tokens. Please sign in again.',
    refused: 'Your account at the identity provider may not use this LRS (its token was refused: department, scopes or expiry).',
  };

  $('signin-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    const key = $('signin-key').value.trim();
    const secret = $('signin-secret').value;
    if (!key || !secret) {
      showError('signin-error', new ConsoleError('Enter both the key and the secret of your credential.'));
      (key ? $('signin-secret') : $('signin-key')).focus();
      return;
    }
    busy(form, true);
    showError('signin-error', null);
    try {
      const res = await api('/console/session', { method: 'POST', json: { key, secret } });
      setWho(await res.json());
      $('signin-secret').value = '';
      announce(`Signed in as ${state.who.name || state.who.key}.`);
      location.hash = `#/${landing()}`;
    } catch (e) {
      showError('signin-error', e.status === 401 ? new ConsoleError('The key or the secret is not right, or the credential was revoked.') : e);
      $('signin-secret').focus();
    } finally {
      busy(form, false);
    }
  });

  $('sign-out').addEventListener('click', async () => {
    try { await api('/console/session', { method: 'DELETE' }); } catch (_) { /* signed out anyway */ }
    signedOut(null);
    announce('You are signed out.');
  });

  // ---------------------------------------------------------------- departments

  async function departments() {
    if (state.departments) return state.departments;
    const own = state.who.department;
    if (!state.who.scopes.includes('admin')) {
      state.departments = [{ path: own, parent: null }];
      return state.departments;
    }
    const res = await api('/admin/departments');
    state.departments = (await res.json()).departments;
    return state.departments;
  }

  const deptLabel = (p) => (p === '/' ? '/ (all departments)' : p);

  async function fillDepartmentSelect(id, { includeOwnAsDefault = true } = {}) {
    const select = $(id);
    const previous = select.value;
    clear(select);
    let list = [];
    try { list = await departments(); } catch (_) { list = [{ path: state.who.department }]; }
    for (const d of list) select.append(make('option', { value: d.path, text: deptLabel(d.path) }));
    if (previous && list.some((d) => d.path === previous)) select.value = previous;
    else if (includeOwnAsDefault) select.value = state.who.department;
  }

  function renderTree(list) {
    const byParent = new Map();
    for (const d of list) {
      const key = d.parent || '';
      if (!byParent.has(key)) byParent.set(key, []);
      byParent.get(key).push(d);
    }
    const paths = new Set(list.map((d) => d.path));
    const roots = list.filter((d) => !d.parent || !paths.has(d.parent));
    const branch = (items) => {
      const ul = make('ul');
      for (const d of items) {
        const li = make('li', {}, make('span', { class: 'path', text: deptLabel(d.path) }));
        if (d.created) li.append(make('span', { class: 'hint', text: ` created ${when(d.created)}` }));
        const kids = byParent.get(d.path);
        if (kids && kids.length) li.append(branch(kids));
        ul.append(li);
      }
      return ul;
    };
    const tree = $('department-tree');
    clear(tree);
    tree.append(branch(roots));
  }

  async function loadCredentials() {
    const res = await api('/admin/credentials');
    const { credentials } = await res.json();
    const tbody = $('credentials-table').querySelector('tbody');
    clear(tbody);
    for (const c of credentials) {
      const action = c.revoked || c.key === state.who.key ? make('td')
        : make('td', {}, make('button', { type: 'button', class: 'danger revoke', 'data-key': c.key, 'aria-label': `Revoke ${c.name} (${c.key})`, text: 'Revoke' }));
      tbody.append(make('tr', { class: c.revoked ? 'revoked' : null },
        make('td', { 'data-label': 'Name', text: c.name }),
        make('td', { 'data-label': 'Key' }, make('code', { text: c.key })),
        make('td', { 'data-label': 'Department', text: c.department }),
        make('td', { 'data-label': 'Scopes', text: c.scopes.join(', ') }),
        make('td', { 'data-label': 'Status', text: c.revoked ? 'revoked' : 'active' }),
        action));
    }
  }

  async function openDepartments() {
    showError('departments-error', null);
    if (!$('credential-scopes').firstChild) {
      for (const [name, label] of SCOPES) {
        const id = `scope-${name.replace(/\//g, '-')}`;
        const input = make('input', { type: 'checkbox', id, name: 'scopes', value: name, checked: name === 'statements/write' || name === 'state' });
        $('credential-scopes').append(make('label', { for: id }, input, make('span', {}, make('code', { text: name }), ` ${label}`)));
      }
    }
    const own = state.who.department;
    $('department-example').textContent = own === '/' ? 'moe' : `${own}/unit`;
    $('department-path').placeholder = own === '/' ? 'moe' : `${own}/`;
    try {
      state.departments = null;
      const list = await departments();
      renderTree(list);
      await fillDepartmentSelect('credential-department');
      await loadCredentials();
    } catch (e) {
      showError('departments-error', e);
    }
  }

  $('department-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    const path = $('department-path').value.trim().replace(/^\/+|\/+$/g, '');
    showError('department-form-error', null);
    if (!path) {
      showError('department-form-error', new ConsoleError('Enter the path of the new department.'));
      $('department-path').focus();
      return;
    }
    busy(form, true);
    try {
      await api('/admin/departments', { method: 'POST', json: { path } });
      $('department-path').value = '';
      announce(`Department ${path} created.`);
      state.departments = null;
      renderTree(await departments());
      await fillDepartmentSelect('credential-department');
    } catch (e) {
      showError('department-form-error', e);
      $('department-path').focus();
    } finally {
      busy(form, false);
    }
  });

  $('credential-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    const name = $('credential-name').value.trim();
    const scopes = [...form.querySelectorAll('input[name="scopes"]:checked')].map((i) => i.value);
    showError('credential-form-error', null);
    if (!name) {
      showError('credential-form-error', new ConsoleError('Give the credential a name, so that you can recognise it later.'));
      $('credential-name').focus();
      return;
    }
    if (!scopes.length) {
      showError('credential-form-error', new ConsoleError('Choose at least one thing the credential may do.'));
      return;
    }
    busy(form, true);
    try {
      const res = await api('/admin/credentials', { method: 'POST', json: { name, scopes, department: $('credential-department').value } });
      const issued = await res.json();
      $('issued-key').value = issued.key;
      $('issued-secret').value = issued.secret;
      $('credential-issued').hidden = false;
      $('credential-name').value = '';
      await loadCredentials();
      $('credential-issued').focus();
      announce(`Credential ${issued.name} created. Copy its secret now.`);
    } catch (e) {
      showError('credential-form-error', e);
    } finally {
      busy(form, false);
    }
  });

  $('credentials-table').addEventListener('click', async (ev) => {
    const button = ev.target.closest('button.revoke');
    if (!button) return;
    const key = button.dataset.key;
    if (!window.confirm(`Revoke the credential ${key}? Content and tools using it stop working at once.`)) return;
    showError('departments-error', null);
    try {
      await api(`/admin/credentials/${encodeURIComponent(key)}`, { method: 'DELETE' });
      announce(`Credential ${key} revoked.`);
      await loadCredentials();
    } catch (e) {
      showError('departments-error', e);
    }
  });

  document.addEventListener('click', async (ev) => {
    const button = ev.target.closest('button.copy');
    if (!button) return;
    const input = $(button.dataset.copy);
    input.select();
    try {
      await navigator.clipboard.writeText(input.value);
      announce('Copied.');
    } catch (_) {
      announce('The text is selected: copy it with your keyboard or menu.');
    }
  });

  // ---------------------------------------------------------------- completions

  const FIGURES = [
    ['attempted', 'Attempted'], ['completed', 'Completed'], ['passed', 'Passed'], ['failed', 'Failed'], ['scored', 'Scored'],
  ];

  function percent(v) { return v === null || v === undefined ? '' : `${Math.round(v * 1000) / 10}%`; }

  function completionsQuery() {
    const q = new URLSearchParams();
    const activity = $('completions-activity').value.trim();
    if (activity) q.set('activity', activity);
    if ($('completions-from').value) q.set('from', $('completions-from').value);
    if ($('completions-to').value) q.set('to', $('completions-to').value);
    q.set('group_by', $('completions-group').value);
    const dept = $('completions-department').value;
    return { query: q.toString(), department: dept && dept !== state.who.department ? dept : undefined };
  }

  async function openCompletions() {
    await fillDepartmentSelect('completions-department');
  }

  function renderCompletions(data) {
    const group = data.groupBy;
    const totals = $('completions-totals');
    clear(totals);
    for (const [k, label] of FIGURES) totals.append(make('div', {}, make('dt', { text: label }), make('dd', { 'data-figure': k, text: String(data.totals[k]) })));
    totals.append(make('div', {}, make('dt', { text: 'Average score' }), make('dd', { 'data-figure': 'averageScaledScore', text: percent(data.totals.averageScaledScore) || '–' })));
    const range = data.from && data.to ? `from ${data.from} to ${data.to}` : 'over all days';
    const behind = data.projectedThrough < data.logSize
      ? ` The newest ${data.logSize - data.projectedThrough} record(s) are still being counted; show the figures again in a moment.` : '';
    $('completions-note').textContent = `Learners ${range}${data.activity ? ` for ${data.activity}` : ', all activities'}.${behind}`;

    const thead = $('completions-table').querySelector('thead');
    const tbody = $('completions-table').querySelector('tbody');
    clear(thead);
    clear(tbody);
    const groupLabel = { day: 'Day', department: 'Department', activity: 'Activity' }[group];
    thead.append(make('tr', {}, make('th', { scope: 'col', text: groupLabel }),
      ...FIGURES.map(([, l]) => make('th', { scope: 'col', class: 'num', text: l })),
      make('th', { scope: 'col', class: 'num', text: 'Average score' })));
    for (const r of data.rows) {
      tbody.append(make('tr', {}, make('th', { scope: 'row', text: r[group] }),
        ...FIGURES.map(([k, l]) => make('td', { class: 'num', 'data-label': l, text: String(r[k]) })),
        make('td', { class: 'num', 'data-label': 'Average score', text: percent(r.averageScaledScore) })));
    }
    if (!data.rows.length) tbody.append(make('tr', {}, make('td', { colspan: 7, text: 'No learner activity matches these filters.' })));
    $('completions-table').classList.add('stack');

    const charts = $('completions-charts');
    clear(charts);
    if (data.rows.length) {
      const labels = data.rows.map((r) => (group === 'day' ? r.day.slice(5) : String(r[group])));
      const what = group === 'day' ? 'per day' : `per ${group}`;
      const width = Math.round(Math.min(640, Math.max(280, $('main').clientWidth - 32)));
      charts.append(window.Charts.bars({
        id: 'chart-outcomes',
        title: `Completed, passed and failed ${what}`,
        description: data.rows.map((r) => `${r[group]}: ${r.completed} completed, ${r.passed} passed, ${r.failed} failed`).join('; '),
        labels,
        width,
        integer: true,
        series: [
          { name: 'Completed', cls: 's1', values: data.rows.map((r) => r.completed) },
          { name: 'Passed', cls: 's2', values: data.rows.map((r) => r.passed) },
          { name: 'Failed', cls: 's3', values: data.rows.map((r) => r.failed) },
        ],
      }));
      charts.append(window.Charts.bars({
        id: 'chart-score',
        title: `Average score ${what}`,
        description: data.rows.map((r) => `${r[group]}: ${percent(r.averageScaledScore) || 'no score'}`).join('; '),
        labels,
        width,
        max: 1,
        format: (v) => `${Math.round(v * 100)}%`,
        series: [{ name: 'Average scaled score', cls: 's4', values: data.rows.map((r) => (r.averageScaledScore === undefined ? null : r.averageScaledScore)) }],
      }));
    }
    $('completions-result').hidden = false;
  }

  $('completions-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    showError('completions-error', null);
    busy(form, true);
    try {
      const { query, department } = completionsQuery();
      const res = await api(`/analytics/completions?${query}`, { department });
      renderCompletions(await res.json());
      announce('Figures updated.');
    } catch (e) {
      showError('completions-error', e);
    } finally {
      busy(form, false);
    }
  });

  $('completions-csv').addEventListener('click', async () => {
    showError('completions-error', null);
    try {
      const { query, department } = completionsQuery();
      const res = await api(`/analytics/completions?${query}`, { department, accept: 'text/csv' });
      const blob = await res.blob();
      const url = URL.createObjectURL(blob);
      const a = make('a', { href: url, download: `completions-${new Date().toISOString().slice(0, 10)}.csv` });
      document.body.append(a);
      a.click();
      a.remove();
      window.setTimeout(() => URL.revokeObjectURL(url), 10000);
      announce('The CSV file is downloading.');
    } catch (e) {
      showError('completions-error', e);
    }
  });

  // ---------------------------------------------------------------- statements

  function agentText(a) {
    if (!a || typeof a !== 'object') return '';
    if (a.name) return a.name;
    if (a.mbox) return String(a.mbox).replace(/^mailto:/, '');
    if (a.account) return `${a.account.name} (${a.account.homePage})`;
    if (a.openid) return a.openid;
    if (a.mbox_sha1sum) return `e-mail hash ${a.mbox_sha1sum}`;
    return a.objectType === 'Group' ? 'a group' : 'someone';
  }

  function display(map, fallback) {
    if (map && typeof map === 'object') {
      return map['en-US'] || map.en || map['en-IN'] || Object.values(map)[0] || fallback;
    }
    return fallback;
  }

  function verbText(v) { return v ? display(v.display, String(v.id || '').split('/').pop()) : ''; }
  function objectText(o) {
    if (!o) return '';
    if (!o.objectType || o.objectType === 'Activity') return display(o.definition && o.definition.name, o.id);
    if (o.objectType === 'StatementRef') return `statement ${o.id}`;
    return agentText(o);
  }

  function xapi(path, opts = {}) {
    return api(path, { ...opts, headers: { 'X-Experience-API-Version': XAPI_VERSION, ...(opts.headers || {}) } });
  }

  function toggleAgentFields() {
    const kind = $('statements-agent-kind').value;
    $('statements-mbox-field').hidden = kind !== 'mbox';
    $('statements-homepage-field').hidden = kind !== 'account';
    $('statements-account-field').hidden = kind !== 'account';
  }
  $('statements-agent-kind').addEventListener('change', toggleAgentFields);

  async function openStatements() {
    await fillDepartmentSelect('statements-department');
  }

  function statementsQuery() {
    const q = new URLSearchParams();
    const kind = $('statements-agent-kind').value;
    if (kind === 'mbox') {
      const mbox = $('statements-mbox').value.trim();
      if (!mbox) throw new ConsoleError('Enter the learner\'s e-mail address, or search for anyone.');
      q.set('agent', JSON.stringify({ mbox: `mailto:${mbox}` }));
    } else if (kind === 'account') {
      const homePage = $('statements-homepage').value.trim();
      const name = $('statements-account').value.trim();
      if (!homePage || !name) throw new ConsoleError('Enter both the account\'s home page and its name.');
      q.set('agent', JSON.stringify({ account: { homePage, name } }));
    }
    for (const [field, param] of [['statements-verb', 'verb'], ['statements-activity', 'activity']]) {
      const v = $(field).value.trim();
      if (v) q.set(param, v);
    }
    for (const [field, param] of [['statements-since', 'since'], ['statements-until', 'until']]) {
      const v = $(field).value;
      if (v) {
        const d = new Date(v);
        if (Number.isNaN(d.getTime())) throw new ConsoleError('A date or time is not valid.');
        q.set(param, d.toISOString());
      }
    }
    q.set('limit', '25');
    const dept = $('statements-department').value;
    return { path: `/xapi/statements?${q}`, department: dept && dept !== state.who.department ? dept : undefined };
  }

  function renderStatements(list, append) {
    const tbody = $('statements-table').querySelector('tbody');
    if (!append) clear(tbody);
    for (const s of list) {
      tbody.append(make('tr', {},
        make('td', { 'data-label': 'Stored', text: when(s.stored) }),
        make('td', { 'data-label': 'Learner', text: agentText(s.actor) }),
        make('td', { 'data-label': 'Verb', text: verbText(s.verb) }),
        make('td', { 'data-label': 'Activity', text: objectText(s.object) }),
        make('td', {}, make('button', { type: 'button', class: 'secondary open', 'data-id': s.id, 'aria-label': `Open statement ${s.id}`, text: 'Open' }))));
    }
    if (!append && !list.length) tbody.append(make('tr', {}, make('td', { colspan: 5, text: 'No statement matches these filters.' })));
    $('statements-table').classList.add('stack');
    $('statements-more').hidden = !state.more;
    $('statements-result').hidden = false;
  }

  async function searchStatements(path, department, append) {
    const res = await xapi(path, { department });
    const data = await res.json();
    state.more = data.more || null;
    state.statementsDepartment = department;
    renderStatements(data.statements, append);
    announce(`${data.statements.length} statement(s) ${append ? 'more ' : ''}shown.`);
  }

  $('statements-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    showError('statements-error', null);
    busy(form, true);
    try {
      const { path, department } = statementsQuery();
      await searchStatements(path, department, false);
    } catch (e) {
      showError('statements-error', e);
    } finally {
      busy(form, false);
    }
  });

  $('statements-more').addEventListener('click', async () => {
    if (!state.more) return;
    showError('statements-error', null);
    try {
      const more = state.more.startsWith('/') ? state.more : `/xapi/statements?more=${encodeURIComponent(state.more)}`;
      await searchStatements(more, state.statementsDepartment, true);
    } catch (e) {
      showError('statements-error', e);
    }
  });

  async function openStatement(id) {
    showError('statements-error', null);
    const department = state.statementsDepartment;
    const q = (param) => `/xapi/statements?${param}=${encodeURIComponent(id)}&format=exact`;
    let statement;
    let voided = false;
    try {
      statement = await (await xapi(q('statementId'), { department })).json();
    } catch (e) {
      if (e.status !== 404) throw e;
      statement = await (await xapi(q('voidedStatementId'), { department })).json();
      voided = true;
    }
    let proof = 'Checking…';
    try {
      const p = await (await api(`/audit/proof?statementId=${encodeURIComponent(id)}`, { department })).json();
      const size = /\n(\d+)\n/.exec(p.proof);
      proof = `In the audit log at leaf ${p.leafIndex}${size ? `, covered by the signed checkpoint of ${size[1]} leaves` : ''} (department ${p.department || '/'}).`;
    } catch (e) {
      proof = e.status === 503 ? 'Not yet in a signed checkpoint of the audit log (this takes a few seconds).' : `Not available: ${e.message}`;
    }
    const facts = $('statement-facts');
    clear(facts);
    const row = (k, v) => facts.append(make('dt', { text: k }), make('dd', {}, v));
    row('Id', make('code', { text: statement.id }));
    row('Learner', agentText(statement.actor));
    row('Verb', `${verbText(statement.verb)} (${statement.verb && statement.verb.id})`);
    row('Activity', objectText(statement.object));
    if (statement.result) {
      const r = statement.result;
      const parts = [];
      if (r.completion !== undefined) parts.push(r.completion ? 'completed' : 'not completed');
      if (r.success !== undefined) parts.push(r.success ? 'passed' : 'failed');
      if (r.score && r.score.scaled !== undefined) parts.push(`score ${percent(r.score.scaled)}`);
      row('Result', parts.join(', ') || 'recorded');
    }
    row('Happened', when(statement.timestamp));
    row('Stored', when(statement.stored));
    row('Voided', voided ? 'Yes: this statement was voided and no longer counts.' : 'No');
    row('Audit log', proof);
    const att = $('statement-attachments');
    clear(att);
    const list = statement.attachments || [];
    if (!list.length) {
      att.append(make('p', { text: 'None.' }));
    } else {
      const ul = make('ul');
      for (const a of list) {
        ul.append(make('li', { text: `${display(a.display, 'attachment')}: ${a.contentType}, ${a.length} bytes, ${a.usageType}` }));
      }
      att.append(ul);
    }
    $('statement-json').textContent = JSON.stringify(statement, null, 2);
    $('statement-detail-h').textContent = `Statement ${statement.id}`;
    $('statement-detail').hidden = false;
    $('statement-detail-h').focus();
  }

  $('statements-table').addEventListener('click', (ev) => {
    const b = ev.target.closest('button.open');
    if (b) openStatement(b.dataset.id).catch((e) => showError('statements-error', e));
  });

  $('statement-lookup').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const id = $('statement-id').value.trim();
    if (!id) {
      showError('statements-error', new ConsoleError('Enter a statement id.'));
      return;
    }
    state.statementsDepartment = undefined;
    openStatement(id).catch((e) => showError('statements-error', e.status === 404 ? new ConsoleError('No statement with that id in your departments.') : e));
  });

  // ---------------------------------------------------------------- verify

  async function openVerify() {
    if ($('verify-vkey').value) return;
    try {
      const res = await fetch('/audit/vkey', { cache: 'no-store' });
      if (res.ok) $('verify-vkey').value = (await res.text()).trim();
    } catch (_) { /* typed by hand */ }
  }

  async function verifyFile(file) {
    const out = $('verify-result');
    out.hidden = false;
    out.className = 'result';
    out.removeAttribute('role');
    clear(out);
    if (!file) return;
    if (!window.crypto || !window.crypto.subtle) {
      out.className = 'result failed';
      out.append(make('p', { text: 'This browser cannot check signatures here (no Web Crypto). Use a current browser over https, or the command `karmayogi-lrs audit verify`.' }));
      return;
    }
    const vkey = $('verify-vkey').value.trim();
    let result;
    try {
      const bytes = new Uint8Array(await file.arrayBuffer());
      result = await window.CertVerify.verify(bytes, vkey);
    } catch (e) {
      result = { ok: false, failures: [`The file could not be checked: ${e.message}`], facts: {} };
    }
    const f = result.facts;
    if (result.ok) {
      out.className = 'result verified';
      out.setAttribute('role', 'status');
      out.append(make('h2', { text: 'Verified' }));
      out.append(make('p', { text: `${f.learner} completed “${f.achievement}” on ${when(f.completedAt)}.` }));
      const dl = make('dl', { class: 'facts' });
      const row = (k, v) => dl.append(make('dt', { text: k }), make('dd', { text: v }));
      row('Learner', f.learner);
      row('Activity', f.activity);
      row('Completed', `${when(f.completedAt)} (${f.completedAt})`);
      row('Recorded in', `the audit log ${f.origin}, leaf ${f.leaves.join(', ')} of ${f.treeSize}, signed by the log's key`);
      row('Issued by', `${f.issuer}, ${when(f.awardedDate)}`);
      out.append(dl);
      out.append(make('p', { class: 'hint', text: 'A statement voided after the certificate was issued cannot be seen offline: ask the LRS when that matters.' }));
    } else {
      out.className = 'result failed';
      out.setAttribute('role', 'alert');
      out.append(make('h2', { text: 'Not verified' }));
      out.append(make('p', { text: 'This certificate does not prove a completion. What failed:' }));
      out.append(make('ul', {}, ...result.failures.map((m) => make('li', { text: m }))));
    }
    out.focus();
  }

  $('verify-file').addEventListener('change', (ev) => { verifyFile(ev.target.files[0]); });
  $('verify-form').addEventListener('submit', (ev) => { ev.preventDefault(); verifyFile($('verify-file').files[0]); });
  const drop = $('verify-drop');
  drop.addEventListener('dragover', (ev) => { ev.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (ev) => {
    ev.preventDefault();
    drop.classList.remove('over');
    const file = ev.dataTransfer && ev.dataTransfer.files[0];
    if (file) verifyFile(file);
  });

  // ---------------------------------------------------------------- packages

  async function loadPackages() {
    const res = await api('/scorm/packages');
    const { packages } = await res.json();
    const tbody = $('packages-table').querySelector('tbody');
    clear(tbody);
    for (const p of packages) {
      tbody.append(make('tr', {},
        make('td', { 'data-label': 'Title', text: p.title }),
        make('td', { 'data-label': 'Kind', text: p.kind }),
        make('td', { 'data-label': 'Department', text: p.department }),
        make('td', { 'data-label': 'Uploaded', text: when(p.created) }),
        make('td', {}, make('button', { type: 'button', class: 'secondary launch', 'data-id': p.id, 'data-title': p.title, 'aria-label': `Launch ${p.title} for a learner`, text: 'Launch' }))));
    }
    if (!packages.length) tbody.append(make('tr', {}, make('td', { colspan: 5, text: 'No package has been uploaded yet.' })));
    $('packages-table').classList.add('stack');
  }

  async function openPackages() {
    showError('packages-error', null);
    try {
      await fillDepartmentSelect('package-department');
      await loadPackages();
    } catch (e) {
      showError('packages-error', e);
    }
  }

  $('package-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    const file = $('package-file').files[0];
    showError('package-form-error', null);
    if (!file) {
      showError('package-form-error', new ConsoleError('Choose the package\'s .zip file.'));
      $('package-file').focus();
      return;
    }
    busy(form, true);
    try {
      const dept = $('package-department').value;
      const q = dept && dept !== state.who.department ? `?department=${encodeURIComponent(dept)}` : '';
      const res = await api(`/scorm/packages${q}`, { method: 'POST', body: file, headers: { 'Content-Type': 'application/zip' } });
      const p = await res.json();
      announce(`Package ${p.title || ''} uploaded.`);
      form.reset();
      await loadPackages();
    } catch (e) {
      showError('package-form-error', e);
    } finally {
      busy(form, false);
    }
  });

  $('packages-table').addEventListener('click', (ev) => {
    const b = ev.target.closest('button.launch');
    if (!b) return;
    state.launchFor = b.dataset.id;
    $('launch-h').textContent = `Launch “${b.dataset.title}” for a learner`;
    $('launch').hidden = false;
    $('launch-link').hidden = true;
    $('launch-h').focus();
  });

  $('launch-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    const mbox = $('launch-mbox').value.trim();
    showError('launch-error', null);
    if (!mbox || !mbox.includes('@')) {
      showError('launch-error', new ConsoleError('Enter the learner\'s e-mail address.'));
      $('launch-mbox').focus();
      return;
    }
    const actor = { objectType: 'Agent', mbox: `mailto:${mbox}` };
    const name = $('launch-name').value.trim();
    if (name) actor.name = name;
    busy(form, true);
    try {
      const res = await api(`/scorm/packages/${encodeURIComponent(state.launchFor)}/launch`, { method: 'POST', json: { actor } });
      const l = await res.json();
      $('launch-url').value = l.playerUrl;
      $('launch-link').hidden = false;
      $('launch-url').focus();
      announce('Launch link ready. Copy it and send it to the learner.');
    } catch (e) {
      showError('launch-error', e);
    } finally {
      busy(form, false);
    }
  });

  start();
}());
