// karmayogi-lrs SCORM player runtime: the SCORM 1.2 `API` and SCORM 2004 `API_1484_11`
// objects a SCO looks for in its parent windows (SCORM RTE 3.3 / 2004 RTE 3.1).
//
// The data model and its rules come from the server (`GET /session/{token}`: the tables
// of `scorm::datamodel`), so the browser and the server apply the same rules. The
// browser answers GetValue/SetValue at once from its copy of the model; Commit and
// Terminate send the accepted SetValue calls, in call order, to the server, which
// replays them through the same rules and turns the change into xAPI statements. When
// the page goes away without Terminate, what is pending leaves with sendBeacon: the
// launch token in the URL is the capability (a beacon carries no Authorization header).
(function () {
  'use strict';
  var parts = location.pathname.split('/');
  var token = parts[2] || '';
  var base = '/session/' + encodeURIComponent(token);
  var statusEl = document.getElementById('player-status');

  function say(text) {
    if (statusEl) statusEl.textContent = text;
  }

  var info = null; // the session description
  var version = null; // "1.2" | "2004"
  var model = {}; // element -> value (strings)
  var table = {}; // element pattern -> row
  var errors = {}; // code -> message
  var rules = {};
  var pending = []; // [element, value] since the last commit
  var state = 'not-initialized'; // then 'running', 'terminated'
  var lastError = '0';
  var lastDiagnostic = '';
  var chain = Promise.resolve();
  var initializeSent = false;

  // Error codes by situation, per version.
  var E = {
    '1.2': {
      general: '101', invalidArg: '201', noChildren: '202', noCount: '203',
      notInit: '301', notImplemented: '401', keyword: '402', readOnly: '403',
      writeOnly: '404', type: '405', alreadyInit: '101', afterTerm: '101',
      commitBeforeInit: '301', commitAfterTerm: '101', getBeforeInit: '301',
      termBeforeInit: '301', termAfterTerm: '101', range: '405', undefined: '401',
      order: '201'
    },
    '2004': {
      general: '101', invalidArg: '201', noChildren: '301', noCount: '301',
      notInit: '122', notImplemented: '402', keyword: '404', readOnly: '404',
      writeOnly: '405', type: '406', alreadyInit: '103', afterTerm: '104',
      commitBeforeInit: '142', commitAfterTerm: '143', getBeforeInit: '122',
      setBeforeInit: '132', getAfterTerm: '123', setAfterTerm: '133',
      termBeforeInit: '112', termAfterTerm: '113', range: '407', undefined: '401',
      order: '351', notInitializedValue: '403'
    }
  };

  function codes() {
    return E[version] || E['2004'];
  }

  function fail(code, diagnostic) {
    lastError = String(code);
    lastDiagnostic = diagnostic || '';
    return false;
  }

  function ok() {
    lastError = '0';
    lastDiagnostic = '';
    return true;
  }

  // `cmi.interactions.3.id` -> `cmi.interactions.n.id`, with the indices.
  function pattern(element) {
    var indices = [];
    var name = element
      .split('.')
      .map(function (seg) {
        if (/^[0-9]+$/.test(seg)) {
          indices.push(parseInt(seg, 10));
          return 'n';
        }
        return seg;
      })
      .join('.');
    return { name: name, indices: indices };
  }

  // How many entries a collection has, from the model (`cmi.objectives` -> count).
  function countOf(prefix) {
    var n = 0;
    var re = new RegExp('^' + prefix.replace(/\./g, '\\.') + '\\.([0-9]+)\\.');
    Object.keys(model).forEach(function (k) {
      var m = re.exec(k);
      if (m) n = Math.max(n, parseInt(m[1], 10) + 1);
    });
    return n;
  }

  function checkValue(row, value, element) {
    var t = row.type;
    if (row.max_length !== undefined && value.length > row.max_length) {
      // 2004 keeps at least the SPM; longer values are a type mismatch for 1.2 only.
      if (version === '1.2') return codes().type;
    }
    if (row.vocabulary && (t === 'vocabulary')) {
      if (row.vocabulary.indexOf(value) < 0) return codes().type;
      return null;
    }
    if (t === 'result') {
      if (row.vocabulary.indexOf(value) >= 0) return null;
      if (!/^-?([0-9]+(\.[0-9]*)?|\.[0-9]+)$/.test(value)) return codes().type;
      return null;
    }
    if (row.pattern) {
      var re = null;
      try {
        re = new RegExp(row.pattern);
      } catch (e) {
        re = null;
      }
      if (re && !re.test(value)) return codes().type;
    }
    if (t === 'integer' || t === 'real') {
      var x = Number(value);
      if (!isFinite(x)) return codes().type;
      if ((row.min !== undefined && x < row.min) || (row.max !== undefined && x > row.max)) {
        return codes().range;
      }
    }
    if (t === 'localized_string' && rules.lang_prefix && value.indexOf('{lang=') === 0) {
      try {
        if (!new RegExp(rules.lang_prefix).test(value)) return codes().type;
      } catch (e) {
        /* the server checks it again */
      }
    }
    return null;
  }

  // SCORM 2004 RTE 4.2.22.1 / 4.2.4.1: the LMS decides success from the scaled passing
  // score and completion from the completion threshold (the server applies the same rule,
  // `scorm::evaluation`).
  function lmsEvaluated(element) {
    if (version !== '2004') return null;
    var num = function (k) {
      var v = model[k];
      return v === undefined || v === '' || !isFinite(Number(v)) ? null : Number(v);
    };
    if (element === 'cmi.success_status') {
      var passing = num('cmi.scaled_passing_score');
      var scaled = num('cmi.score.scaled');
      if (passing !== null && scaled !== null) return scaled >= passing ? 'passed' : 'failed';
    }
    if (element === 'cmi.completion_status') {
      var threshold = num('cmi.completion_threshold');
      var progress = num('cmi.progress_measure');
      if (threshold !== null && progress !== null) return progress >= threshold ? 'completed' : 'incomplete';
    }
    return null;
  }

  function getValue(element) {
    if (state === 'not-initialized') {
      fail(codes().getBeforeInit, 'GetValue before Initialize');
      return '';
    }
    if (state === 'terminated') {
      fail(codes().getAfterTerm || codes().afterTerm, 'GetValue after Terminate');
      return '';
    }
    element = String(element === undefined ? '' : element);
    if (element === '') {
      fail(version === '1.2' ? '201' : '301', 'GetValue of an empty element name');
      return '';
    }
    var p = pattern(element);
    var row = table[p.name];
    if (!row) {
      if (/\._children$/.test(element)) {
        fail(codes().noChildren, element + ' has no children');
      } else if (/\._count$/.test(element)) {
        fail(codes().noCount, element + ' has no count');
      } else {
        fail(codes().undefined, element + ' is not part of the data model');
      }
      return '';
    }
    if (row.access === 'wo') {
      fail(codes().writeOnly, element + ' is write-only');
      return '';
    }
    if (row.type === 'keyword') {
      ok();
      if (/\._count$/.test(element)) return String(countOf(element.replace(/\._count$/, '')));
      return row.value !== undefined ? String(row.value) : (model[element] || '');
    }
    var evaluated = lmsEvaluated(element);
    if (evaluated !== null) {
      ok();
      return evaluated;
    }
    if (Object.prototype.hasOwnProperty.call(model, element)) {
      ok();
      return model[element];
    }
    if (p.indices.length) {
      // An entry beyond the collection: nothing to read.
      var prefix = element.split('.').slice(0, 2).join('.');
      if (p.indices[0] >= countOf(prefix)) {
        fail(version === '1.2' ? '201' : '301', element + ' does not exist yet');
        return '';
      }
    }
    if (row['default'] !== undefined) {
      ok();
      return String(row['default']);
    }
    if (version === '2004') {
      fail(codes().notInitializedValue, element + ' has no value yet');
      return '';
    }
    ok();
    return '';
  }

  function setValue(element, value) {
    if (state === 'not-initialized') {
      return fail(codes().setBeforeInit || codes().notInit, 'SetValue before Initialize');
    }
    if (state === 'terminated') {
      return fail(codes().setAfterTerm || codes().afterTerm, 'SetValue after Terminate');
    }
    element = String(element === undefined ? '' : element);
    value = String(value === undefined || value === null ? '' : value);
    if (element === '') {
      return fail(version === '1.2' ? '201' : '351', 'SetValue of an empty element name');
    }
    var p = pattern(element);
    var row = table[p.name];
    if (!row) {
      return fail(codes().undefined, element + ' is not part of the data model');
    }
    if (row.type === 'keyword') {
      return fail(codes().keyword, element + ' is a keyword: it cannot be set');
    }
    if (row.access === 'ro') {
      return fail(codes().readOnly, element + ' is read-only');
    }
    // Collections fill in order: index n may be at most the current count.
    var segs = element.split('.');
    var at = 0;
    for (var i = 0; i < segs.length; i++) {
      if (/^[0-9]+$/.test(segs[i])) {
        var prefix = segs.slice(0, i).join('.');
        if (parseInt(segs[i], 10) > countOf(prefix)) {
          return fail(version === '1.2' ? '201' : '351', element + ': entries must be added in order');
        }
        at++;
      }
    }
    var bad = checkValue(row, value, element);
    if (bad) return fail(bad, value + ' is not a valid value for ' + element);
    if (version === '1.2' && element === 'cmi.comments') {
      model[element] = (model[element] || '') + value;
    } else {
      model[element] = value;
    }
    pending.push([element, value]);
    return ok();
  }

  function send(event, beacon) {
    var body = JSON.stringify({ event: event, sets: pending });
    pending = [];
    if (beacon && navigator.sendBeacon) {
      var blob = new Blob([body], { type: 'text/plain' });
      if (navigator.sendBeacon(base + '/commit', blob)) return Promise.resolve(true);
    }
    // Commits go one after another, in order, and survive the page going away.
    chain = chain.then(function () {
      return fetch(base + '/commit', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: body,
        keepalive: body.length < 60000,
        credentials: 'omit'
      })
        .then(function (r) {
          if (!r.ok) {
            return r.text().then(function (t) {
              say('The LMS could not save progress (' + r.status + '): ' + t);
            });
          }
          say('Progress saved.');
        })
        .catch(function (e) {
          say('The LMS could not be reached: ' + e);
        });
    });
    return chain;
  }

  function initialize(arg) {
    if (arg !== '' && arg !== undefined) return fail(version === '1.2' ? '201' : '201', 'the argument must be ""') ? 'true' : 'false';
    if (state === 'running') return fail(codes().alreadyInit, 'already initialized') ? 'true' : 'false';
    if (state === 'terminated') return fail(version === '1.2' ? '101' : '104', 'already terminated') ? 'true' : 'false';
    state = 'running';
    initializeSent = true;
    send('initialize', false);
    ok();
    return 'true';
  }

  function terminate(arg) {
    if (arg !== '' && arg !== undefined) return fail('201', 'the argument must be ""') ? 'true' : 'false';
    if (state === 'not-initialized') return fail(codes().termBeforeInit, 'not initialized') ? 'true' : 'false';
    if (state === 'terminated') return fail(codes().termAfterTerm, 'already terminated') ? 'true' : 'false';
    state = 'terminated';
    send('terminate', document.visibilityState === 'hidden' || leaving);
    ok();
    return 'true';
  }

  function commit(arg) {
    if (arg !== '' && arg !== undefined) return fail('201', 'the argument must be ""') ? 'true' : 'false';
    if (state === 'not-initialized') return fail(codes().commitBeforeInit, 'not initialized') ? 'true' : 'false';
    if (state === 'terminated') return fail(codes().commitAfterTerm, 'already terminated') ? 'true' : 'false';
    send('commit', leaving);
    ok();
    return 'true';
  }

  function errorString(code) {
    return errors[String(code)] || '';
  }

  var leaving = false;
  function flushOnExit() {
    leaving = true;
    if (state === 'running' && pending.length) send('commit', true);
  }
  window.addEventListener('pagehide', flushOnExit);
  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState === 'hidden') flushOnExit();
    else leaving = false;
  });

  function install() {
    if (version === '1.2') {
      window.API = {
        LMSInitialize: initialize,
        LMSFinish: terminate,
        LMSGetValue: getValue,
        LMSSetValue: function (e, v) {
          return setValue(e, v) ? 'true' : 'false';
        },
        LMSCommit: commit,
        LMSGetLastError: function () {
          return lastError;
        },
        LMSGetErrorString: errorString,
        LMSGetDiagnostic: function () {
          return lastDiagnostic;
        }
      };
    } else {
      window.API_1484_11 = {
        Initialize: initialize,
        Terminate: terminate,
        GetValue: getValue,
        SetValue: function (e, v) {
          return setValue(e, v) ? 'true' : 'false';
        },
        Commit: commit,
        GetLastError: function () {
          return lastError;
        },
        GetErrorString: errorString,
        GetDiagnostic: function () {
          return lastDiagnostic;
        },
        version: '1.0'
      };
    }
  }

  fetch(base, { credentials: 'omit' })
    .then(function (r) {
      if (!r.ok) {
        return r.json().then(function (b) {
          throw new Error((b && b.error && b.error.message) || 'HTTP ' + r.status);
        });
      }
      return r.json();
    })
    .then(function (s) {
      info = s;
      version = s.version;
      model = s.model || {};
      (s.datamodel.elements || []).forEach(function (row) {
        table[row.name] = row;
      });
      (s.datamodel.errors || []).forEach(function (e) {
        errors[String(e.code)] = e.message;
      });
      rules = s.datamodel.rules || {};
      install();
      document.title = s.title + ' — ' + (s.course || 'course');
      var heading = document.getElementById('player-title');
      if (heading) heading.textContent = s.title;
      say(s.resumed ? 'Resuming where you left off.' : 'Starting.');
      var frame = document.getElementById('player-content');
      frame.title = s.title;
      frame.src = '/content/' + encodeURIComponent(token) + '/' + s.launchUrl;
    })
    .catch(function (e) {
      say('This course cannot start: ' + e.message);
    });
})();
