// A small cmi5 assignable unit, plain JavaScript. It does what cmi5 asks of an AU, in
// order: read the launch parameters (8.1), fetch the auth token once (8.2), read
// LMS.LaunchData (10) and the learner preferences (11), state `initialized` (9.3.2), then
// on "Finish" `completed` and `passed` or `failed` with a score (9.3.3–9.3.5), and
// `terminated` on "Exit" or when the page goes away (9.3.8). Every cmi5 defined statement
// carries the context template of LMS.LaunchData, the registration, the cmi5 category and,
// when it judges, the moveOn category (9.6).
//
// <body data-state> says where it is: loading, ready, done, terminated or error.
(function () {
  "use strict";

  var VERB = {
    initialized: "http://adlnet.gov/expapi/verbs/initialized",
    completed: "http://adlnet.gov/expapi/verbs/completed",
    passed: "http://adlnet.gov/expapi/verbs/passed",
    failed: "http://adlnet.gov/expapi/verbs/failed",
    terminated: "http://adlnet.gov/expapi/verbs/terminated",
  };
  var CATEGORY_CMI5 = "https://w3id.org/xapi/cmi5/context/categories/cmi5";
  var CATEGORY_MOVEON = "https://w3id.org/xapi/cmi5/context/categories/moveon";
  var XAPI_VERSION = "1.0.3";
  // This AU's own state document: what it already stated in the registration, so a
  // relaunch does not state `completed` or `passed` twice (9.3).
  var PROGRESS_STATE = "cmi5-check.progress";

  var statusEl = document.getElementById("status");
  var quiz = document.getElementById("quiz");
  var scoreInput = document.getElementById("score");
  var exitButton = document.getElementById("exit");

  var params = new URLSearchParams(window.location.search);
  var launch = {
    endpoint: params.get("endpoint"),
    fetch: params.get("fetch"),
    actor: null,
    registration: params.get("registration"),
    activityId: params.get("activityId"),
  };
  var authToken = null;
  var launchData = null;
  var progress = {};
  var startedAt = 0;
  var terminated = false;

  function show(state, text) {
    document.body.setAttribute("data-state", state);
    statusEl.textContent = text;
  }

  function fail(error) {
    show("error", "Cannot continue: " + (error && error.message ? error.message : error));
  }

  // A version 4 UUID from the platform's random source (randomUUID needs a secure
  // context; getRandomValues does not).
  function uuid() {
    var b = new Uint8Array(16);
    window.crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map
      .call(b, function (x) {
        return (x + 0x100).toString(16).slice(1);
      })
      .join("");
    return (
      h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" +
      h.slice(16, 20) + "-" + h.slice(20)
    );
  }

  // ISO 8601 duration since `from` (milliseconds), to the hundredth of a second.
  function durationSince(from) {
    var centis = Math.max(0, Math.round((Date.now() - from) / 10));
    return "PT" + centis / 100 + "S";
  }

  function resourceUrl(resource, query) {
    var u = new URL(resource, launch.endpoint);
    Object.keys(query || {}).forEach(function (k) {
      u.searchParams.set(k, query[k]);
    });
    return u.toString();
  }

  function xapi(method, resource, query, body, keepalive) {
    var headers = {
      "X-Experience-API-Version": XAPI_VERSION,
      Authorization: "Basic " + authToken,
    };
    var init = { method: method, headers: headers, cache: "no-store", keepalive: !!keepalive };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return window.fetch(resourceUrl(resource, query), init);
  }

  function stateQuery(stateId) {
    return {
      activityId: launch.activityId,
      agent: JSON.stringify(launch.actor),
      registration: launch.registration,
      stateId: stateId,
    };
  }

  // A cmi5 defined statement about this AU.
  function statement(verb, result) {
    var context = JSON.parse(JSON.stringify(launchData.contextTemplate || {}));
    context.registration = launch.registration;
    context.contextActivities = context.contextActivities || {};
    var category = (context.contextActivities.category || []).slice();
    category.push({ objectType: "Activity", id: CATEGORY_CMI5 });
    if (result && ("success" in result || "completion" in result)) {
      category.push({ objectType: "Activity", id: CATEGORY_MOVEON });
    }
    context.contextActivities.category = category;
    var s = {
      id: uuid(),
      actor: launch.actor,
      verb: { id: VERB[verb], display: { "en-US": verb } },
      object: { objectType: "Activity", id: launch.activityId },
      context: context,
      timestamp: new Date().toISOString(),
    };
    if (result) {
      s.result = result;
    }
    return s;
  }

  async function send(list) {
    var r = await xapi("POST", "statements", {}, list.length === 1 ? list[0] : list);
    if (!r.ok) {
      throw new Error("the LRS refused the statements (HTTP " + r.status + "): " + (await r.text()));
    }
  }

  async function start() {
    var missing = ["endpoint", "fetch", "actor", "registration", "activityId"].filter(function (n) {
      return !params.get(n);
    });
    if (missing.length) {
      throw new Error("the launch URL lacks " + missing.join(", ") + " (not launched by a cmi5 LMS?)");
    }
    launch.actor = JSON.parse(params.get("actor"));

    var fetched = await window.fetch(launch.fetch, { method: "POST", cache: "no-store" });
    var answer = await fetched.json();
    if (!answer["auth-token"]) {
      throw new Error("no auth token: " + (answer["error-text"] || "error " + answer["error-code"]));
    }
    authToken = answer["auth-token"];

    var data = await xapi("GET", "activities/state", stateQuery("LMS.LaunchData"));
    if (!data.ok) {
      throw new Error("cannot read LMS.LaunchData (HTTP " + data.status + ")");
    }
    launchData = await data.json();

    // The preferences are read at startup (11.0); none stored is not an error.
    var prefs = await xapi("GET", "agents/profile", {
      agent: JSON.stringify(launch.actor),
      profileId: "cmi5LearnerPreferences",
    });
    if (prefs.ok) {
      var p = await prefs.json();
      if (p.languagePreference) {
        document.documentElement.lang = String(p.languagePreference).split(",")[0];
      }
    }

    var saved = await xapi("GET", "activities/state", stateQuery(PROGRESS_STATE));
    if (saved.ok) {
      progress = await saved.json();
    }

    startedAt = Date.now();
    await send([statement("initialized")]);

    var mode = launchData.launchMode || "Normal";
    exitButton.hidden = false;
    if (mode !== "Normal") {
      show("ready", "Opened in " + mode + " mode: nothing is recorded.");
    } else if (progress.passed) {
      show("ready", "Already passed in this registration.");
    } else {
      quiz.hidden = false;
      show("ready", "Ready. Mastery score: " + (launchData.masteryScore === undefined ? "none" : launchData.masteryScore));
    }
  }

  async function finish(event) {
    event.preventDefault();
    quiz.hidden = true;
    var percent = Math.round(Math.min(100, Math.max(0, Number(scoreInput.value) || 0)));
    var scaled = percent / 100;
    var mastery = launchData.masteryScore;
    var passed = mastery === undefined || mastery === null || scaled >= mastery;
    var duration = durationSince(startedAt);
    var list = [];
    if (!progress.completed) {
      list.push(statement("completed", { completion: true, duration: duration }));
    }
    list.push(
      statement(passed ? "passed" : "failed", {
        success: passed,
        score: { scaled: scaled, raw: percent, min: 0, max: 100 },
        duration: duration,
      })
    );
    await send(list);
    progress = { completed: true, passed: passed || !!progress.passed };
    var r = await xapi("PUT", "activities/state", stateQuery(PROGRESS_STATE), progress);
    if (!r.ok) {
      throw new Error("cannot save progress (HTTP " + r.status + ")");
    }
    show("done", (passed ? "Passed" : "Failed") + " with " + percent + "%.");
  }

  function terminate() {
    if (terminated || !authToken || !startedAt) {
      return Promise.resolve();
    }
    terminated = true;
    // keepalive: the request outlives the page when it is being closed.
    return xapi(
      "POST",
      "statements",
      {},
      statement("terminated", { duration: durationSince(startedAt) }),
      true
    );
  }

  quiz.addEventListener("submit", function (event) {
    finish(event).catch(fail);
  });
  exitButton.addEventListener("click", function () {
    exitButton.hidden = true;
    quiz.hidden = true;
    terminate()
      .then(function (r) {
        if (r && !r.ok) {
          throw new Error("terminated was refused (HTTP " + r.status + ")");
        }
        if (launchData && launchData.returnURL) {
          window.location.assign(launchData.returnURL);
        } else {
          show("terminated", "Finished: you can close this window.");
        }
      })
      .catch(fail);
  });
  window.addEventListener("pagehide", function () {
    terminate();
  });

  start().catch(fail);
})();
