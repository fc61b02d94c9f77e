/*
 * Consentric consent banner and tracking snippet. It asks the visitor which of the declared
 * purposes (GET /v1/purposes) they allow, keeps the answer in one localStorage entry,
 * "consentric.consent", and sends Segment Spec events (POST /v1/b) carrying it in
 * context.consent, from which the server keeps its consent ledger and minimises what it stores.
 *   <script src="https://HOST/consent/v1/WRITE_KEY/consent.js" async></script>
 *   (data-api overrides HOST; data-privacy-url, data-lang, data-mode="wrap")
 * - Before a choice nothing is stored or sent (ePrivacy art. 5(3)); calls wait in memory.
 * - Events are sent only if a consent purpose was granted. If all were refused, calls are
 *   dropped: only the "Consent Preferences Updated" event recording the refusal is sent.
 * - With a TCF CMP (window.__tcfapi) there is no banner: events carry its TC string and are
 *   always sent; the server decides. Global Privacy Control keeps sale/share purposes off.
 * - Wrap mode, for Segment's analytics.js snippet: this tag, WITHOUT async, goes BEFORE the
 *   snippet; its analytics.load() is held, and runs only once something is granted.
 *
 * Stable names: window.consentric {identify track page group alias reset choices
 * openPreferences ready}, also window.analytics unless set or wrap mode; ids consentric-{css,
 * banner,accept,reject,choose} and consentric-{overlay,dialog,dialog-title,close,save,
 * dialog-accept,dialog-reject}; per purpose .consentric-purpose[data-purpose=ID] holding
 * input[name="consentric-purpose"][value=ID] (disabled and checked: "Always on", not based on
 * consent; disabled, unchecked: refused by GPC); .consentric-gpc, -button, -link.
 */
(function () {
  'use strict';

  const script = document.currentScript || document.querySelector('script[src$="/consent.js"]');
  const KEY = 'consentric.consent';
  const BASIS = {
    consent: 'your consent',
    contract: 'a contract with you (needed for what you asked for)',
    legal_obligation: 'a legal obligation',
    legitimate_interest: 'our legitimate interest (you may object)',
  };

  let host, writeKey, privacyUrl, mode, tcString, anonId, heldLoad, segment, timer, backingOff, warned;
  let state = 'pending'; // then 'known' or 'failed'
  let purposes = [], consentIds = [], gpcIds = [], choices = {}, userId = null, userHash = null;
  const buffer = [], outbox = [], readyCbs = [], ui = {};

  const warn = (...a) => console.warn('consentric:', ...a);
  const safe = fn => function () { try { return fn.apply(this, arguments); } catch (e) { warn(e); } };
  const isObj = v => v !== null && typeof v === 'object' && !Array.isArray(v);
  const obj = v => (isObj(v) ? v : {});
  const isId = v => typeof v === 'string' || typeof v === 'number';
  const iso = () => new Date().toISOString();
  // A v4 UUID; crypto.randomUUID exists only in secure contexts, getRandomValues everywhere.
  const uuid = () => {
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    const x = [...b].map(v => (v + 256).toString(16).slice(1)).join('');
    return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
  };
  const stored = () => { try { return JSON.parse(localStorage.getItem(KEY)); } catch (e) { return null; } };
  const store = v => { try { localStorage.setItem(KEY, JSON.stringify(v)); } catch (e) { /* blocked */ } };
  const tcf = () => typeof window.__tcfapi === 'function';
  const pageInfo = () => ({
    path: location.pathname,
    referrer: document.referrer,
    search: location.search,
    title: document.title,
    url: location.href.replace(/#.*/, ''),
  });

  function versions() {
    const v = {};
    purposes.forEach(p => { v[p.id] = p.version; });
    return v;
  }
  const allowed = () => state === 'known' && (mode === 'tcf' || consentIds.some(id => choices[id]));
  const consentContext = () => (mode === 'tcf' ? { tcfString: tcString }
    : { categoryPreferences: Object.assign({}, choices), source: 'banner', purposeVersions: versions() });

  function build(type, fields) {
    const ev = JSON.parse(JSON.stringify(fields)); // throws on cycles: the event is dropped
    ev.type = type;
    ev.messageId = uuid();
    ev.timestamp = iso();
    if (userId !== null && !ev.userId) ev.userId = userId;
    ev.context = {
      library: { name: 'consentric-consent.js', version: '1' },
      page: pageInfo(),
      userAgent: navigator.userAgent,
      locale: navigator.language,
    };
    if (userHash) ev.context.userHash = userHash;
    return { ev, tries: 0, done: () => {} };
  }

  function call(type, fields, cb) {
    return new Promise(resolve => {
      const done = ok => { resolve(ok); if (cb) safe(cb)(ok); };
      try {
        if (state === 'failed') return done(false);
        const item = build(type, fields);
        item.done = done;
        if (state === 'known') return allowed() ? send(item) : done(false);
        if (buffer.length < 100) return buffer.push(item);
      } catch (e) { warn(e); }
      done(false);
    });
  }

  function send(item) {
    item.ev.anonymousId = anonId;
    if (item.ev.type === 'alias' && !item.ev.previousId) item.ev.previousId = anonId;
    item.ev.context.consent = consentContext();
    outbox.push(item);
    if (outbox.length >= 20 && !backingOff) flush();
    else if (!timer) later(1000);
  }

  function later(ms) {
    clearTimeout(timer);
    timer = setTimeout(() => { backingOff = false; flush(); }, ms);
  }

  function flush() {
    clearTimeout(timer);
    timer = 0;
    while (outbox.length) post(outbox.splice(0, 20));
  }

  function post(items) {
    items.forEach(i => { i.tries++; });
    const body = JSON.stringify({ batch: items.map(i => i.ev), writeKey, sentAt: iso() });
    const end = ok => items.forEach(i => i.done(ok));
    fetch(host + '/v1/b', {
      method: 'POST',
      body,
      headers: { 'Content-Type': 'text/plain' }, // a simple request: no CORS preflight
      credentials: 'omit',
      keepalive: new Blob([body]).size < 65000, // browsers refuse larger keepalive bodies
    }).then(r => {
      if (r.ok) return end(true);
      if (r.status === 429 || r.status >= 500) return retry(items, r.headers.get('Retry-After'));
      // A batch is refused whole for one bad event (a malformed one, an alias the key may not
      // make): send them one by one, so that only that one is lost.
      if (items.length > 1) return items.forEach(i => post([i]));
      if (!warned) warn('events refused with', r.status);
      warned = true;
      end(false);
    }, () => retry(items, 0)).catch(warn);
  }

  function retry(items, after) {
    items.filter(i => i.tries >= 6).forEach(i => i.done(false));
    const keep = items.filter(i => i.tries < 6);
    if (!keep.length) return;
    outbox.unshift(...keep);
    backingOff = true;
    later(Math.max(Math.min(500 * 2 ** keep[0].tries, 30000), (after | 0) * 1000));
  }

  function known() {
    const first = state !== 'known';
    state = 'known';
    buffer.splice(0).forEach(i => (allowed() ? send(i) : i.done(false)));
    if (first) readyCbs.splice(0).forEach(f => f());
    releaseSegment();
  }

  function fail() {
    state = 'failed';
    buffer.splice(0).forEach(i => i.done(false));
  }

  function setChoices(grants) {
    choices = {};
    consentIds.forEach(id => { choices[id] = grants[id] === true && !gpcIds.includes(id); });
  }

  function choose(grants) {
    setChoices(grants);
    anonId = anonId || uuid();
    store({ anonymousId: anonId, choices, versions: versions(), at: iso() });
    if (ui.banner) ui.banner.remove();
    ui.banner = null;
    closeDialog();
    send(build('track', { event: 'Consent Preferences Updated', properties: {} })); // refusals too
    known();
  }

  function decide(list) {
    if (mode) return;
    if (tcf()) return startTcf();
    if (!list) return fail();
    mode = 'banner';
    purposes = list;
    consentIds = list.filter(p => p.legal_basis === 'consent').map(p => p.id);
    if (navigator.globalPrivacyControl === true) gpcIds = list.filter(p => p.sale_or_share).map(p => p.id);
    const s = obj(stored());
    const v = versions();
    if (typeof s.anonymousId === 'string' && consentIds.every(id =>
      typeof obj(s.choices)[id] === 'boolean' && obj(s.versions)[id] === v[id])) {
      setChoices(s.choices);
      return known();
    }
    if (consentIds.length) showBanner();
    else known(); // nothing to ask, so nothing will be sent
  }

  function startTcf() {
    mode = 'tcf';
    window.__tcfapi('addEventListener', 2, safe((d, ok) => {
      if (ok === false || !d || !d.tcString || !/^(tcloaded|useractioncomplete)$/.test(d.eventStatus)) return;
      tcString = d.tcString;
      if (!anonId) store({ anonymousId: (anonId = uuid()) }); // the CMP keeps the consent
      known();
    }));
  }

  function wrapSegment() {
    const hook = stub => {
      if (!stub || typeof stub !== 'object') return stub;
      if (stub.initialized || '_loadOptions' in stub) return warn('put consent.js before the analytics.js snippet, without async') || stub;
      let load = stub.load;
      const held = function () {
        const args = arguments;
        heldLoad = () => load.apply(stub, args);
        releaseSegment();
      };
      segment = stub;
      Object.defineProperty(stub, 'load', { configurable: true, get: () => load && held, set: f => { load = f; } });
      return stub;
    };
    if (window.analytics) return hook(window.analytics);
    // The snippet begins `window.analytics = window.analytics || []`: catch that array.
    Object.defineProperty(window, 'analytics', {
      configurable: true,
      get: () => undefined,
      set: v => Object.defineProperty(window, 'analytics', { value: hook(v), writable: true, configurable: true, enumerable: true }),
    });
  }

  function releaseSegment() {
    if (!heldLoad || !allowed()) return;
    const load = heldLoad;
    heldLoad = null;
    safe(load)();
    safe(() => segment.addSourceMiddleware(safe(({ payload, next }) => {
      if (!allowed()) return; // everything refused since: not calling next drops the event
      payload.obj.context = payload.obj.context || {};
      payload.obj.context.consent = consentContext();
      next(payload);
    })))();
    safe(() => segment.setAnonymousId(anonId))();
  }

  function h(tag, props, kids) {
    const e = document.createElement(tag);
    Object.keys(props).forEach(k => {
      const v = props[k];
      if (k === 'text') e.textContent = v;
      else if (typeof v === 'function') e.addEventListener(k, safe(v));
      else if (typeof v === 'boolean') e[k] = v;
      else e.setAttribute(k, v);
    });
    (kids || []).forEach(c => c && e.appendChild(c));
    return e;
  }
  const button = (id, text, click) => h('button', { type: 'button', id, class: 'consentric-button', text, click });
  const buttons = list => h('div', { class: 'consentric-buttons' }, list);
  const link = () => h('a', { class: 'consentric-link', href: privacyUrl, text: 'Privacy centre' });
  const gpcNote = () => gpcIds.length && h('p', {
    class: 'consentric-gpc',
    text: 'Your browser’s Global Privacy Control signal was honoured: ' + gpcIds.join(', ') + ' (selling or sharing data) stay off.',
  });
  const acceptAll = () => choose(consentIds.reduce((m, id) => { m[id] = true; return m; }, {}));
  const rejectAll = () => choose({});

  function showBanner() {
    const choose = button('consentric-choose', 'Choose', () => openDialog(choose));
    ui.banner = h('div', { id: 'consentric-banner', role: 'region', 'aria-label': 'Privacy choices' }, [
      h('p', { text: 'May we use data about your visit for optional purposes (see Choose)? ' +
        'Nothing optional happens until you decide, and you can change your mind at any time.' }),
      gpcNote(),
      buttons([button('consentric-accept', 'Accept all', acceptAll), button('consentric-reject', 'Reject all', rejectAll), choose]),
      link(),
    ]);
    // First in the document, where keyboard and screen-reader users meet it first.
    document.body.insertBefore(ui.banner, document.body.firstChild);
  }

  function row(p, i) {
    const id = 'consentric-purpose-' + i;
    const gpc = gpcIds.includes(p.id);
    const optional = p.legal_basis === 'consent';
    const always = !gpc && !optional;
    const r = Array.isArray(p.recipients) ? p.recipients : [];
    return h('li', { class: 'consentric-purpose', 'data-purpose': p.id }, [
      h('input', {
        type: 'checkbox',
        id,
        name: 'consentric-purpose',
        value: p.id,
        checked: always || (!gpc && state === 'known' && choices[p.id] === true),
        disabled: !optional || gpc,
        'aria-describedby': id + 'd',
      }),
      h('label', { for: id, text: (p.text || p.id) + ' ' }, [always && h('span', { class: 'consentric-always', text: 'Always on' })]),
      h('p', {
        id: id + 'd',
        class: 'consentric-details',
        text: (gpc ? 'Off: refused by Global Privacy Control. ' : '') +
          'Legal basis: ' + (BASIS[p.legal_basis] || p.legal_basis) + '. Kept ' + p.retention_days + ' days. ' +
          (r.length ? 'Recipients: ' + r.join('; ') + '.' : 'Not shared with others.'),
      }),
    ]);
  }

  function openDialog(opener) {
    if (mode !== 'banner' || ui.overlay) return false;
    ui.opener = opener || document.activeElement;
    const save = () => {
      const grants = {};
      ui.overlay.querySelectorAll('input:checked').forEach(c => { grants[c.value] = true; });
      choose(grants);
    };
    const dialog = h('div', {
      id: 'consentric-dialog',
      role: 'dialog',
      'aria-modal': 'true',
      'aria-labelledby': 'consentric-dialog-title',
    }, [
      h('button', { type: 'button', id: 'consentric-close', 'aria-label': 'Close', text: '×', click: closeDialog }),
      h('h2', { id: 'consentric-dialog-title', text: 'Privacy preferences' }),
      h('p', { text: 'Optional purposes stay off unless you turn them on. You can change your mind at any time.' }),
      gpcNote(),
      h('ul', {}, purposes.map(row)),
      buttons([
        button('consentric-save', 'Save choices', save),
        button('consentric-dialog-accept', 'Accept all', acceptAll),
        button('consentric-dialog-reject', 'Reject all', rejectAll),
      ]),
      link(),
    ]);
    ui.overlay = h('div', { id: 'consentric-overlay' }, [dialog]);
    document.body.appendChild(ui.overlay);
    document.addEventListener('keydown', trap, true);
    (dialog.querySelector('input:enabled') || dialog.querySelector('button')).focus();
    return true;
  }

  function closeDialog() {
    if (!ui.overlay) return;
    document.removeEventListener('keydown', trap, true);
    ui.overlay.remove();
    ui.overlay = null;
    if (ui.opener && ui.opener.isConnected) ui.opener.focus();
  }

  const trap = safe(e => {
    if (e.key === 'Escape') {
      e.preventDefault();
      return closeDialog();
    }
    if (e.key !== 'Tab') return;
    const f = ui.overlay.querySelectorAll('button, a, input:enabled');
    const a = document.activeElement;
    const out = !ui.overlay.contains(a);
    if (e.shiftKey ? a === f[0] || out : a === f[f.length - 1] || out) {
      e.preventDefault();
      f[e.shiftKey ? f.length - 1 : 0].focus();
    }
  });

  // Segment's signatures: optional leading arguments shift, a callback may come last.

  const cbOf = a => [].find.call(a, v => typeof v === 'function');
  const api = {
    identify(id, traits, options) {
      if (isObj(id)) [id, traits, options] = [null, id, traits];
      if (isId(id)) {
        if (String(id) !== userId) userHash = null;
        userId = String(id);
      }
      if (obj(options).userHash) userHash = String(options.userHash);
      return call('identify', { traits: obj(traits) }, cbOf(arguments));
    },
    track(event, properties) {
      return call('track', { event: String(event), properties: obj(properties) }, cbOf(arguments));
    },
    page() {
      const names = [].filter.call(arguments, isId).map(String).slice(0, 2);
      const fields = { properties: Object.assign(pageInfo(), [].find.call(arguments, isObj)) };
      if (names.length > 1) fields.category = names[0];
      if (names.length) fields.properties.name = fields.name = names[names.length - 1];
      return call('page', fields, cbOf(arguments));
    },
    group(groupId, traits) {
      return call('group', { groupId: String(groupId), traits: obj(traits) }, cbOf(arguments));
    },
    alias(to, from) {
      if (!isId(from)) from = userId;
      return call('alias', { userId: String(to), previousId: from === null ? undefined : String(from) }, cbOf(arguments));
    },
    reset() {
      userId = userHash = null;
    },
    // {purpose: granted} after a banner choice, {tcfString} with a CMP, null until then.
    choices() {
      return state !== 'known' ? null : mode === 'tcf' ? { tcfString: tcString } : Object.assign({}, choices);
    },
    openPreferences() {
      return openDialog();
    },
    // Once consent is known; never if the purposes could not be loaded.
    ready(cb) {
      return new Promise(resolve => {
        const f = () => { resolve(api.choices()); if (typeof cb === 'function') safe(cb)(); };
        if (state === 'known') f();
        else readyCbs.push(f);
      });
    },
  };
  Object.keys(api).forEach(k => { api[k] = safe(api[k]); });

  function start() {
    const m = /^(.*)\/consent\/v1\/([^/]+)\/consent\.js/.exec(script ? script.src : '');
    if (window.consentric || !m) return warn('included twice, or not from /consent/v1/WRITE_KEY/consent.js');
    const data = script.dataset;
    writeKey = decodeURIComponent(m[2]);
    host = (data.api || m[1]).replace(/\/+$/, '');
    privacyUrl = /^(https?:)?\//.test(data.privacyUrl) ? data.privacyUrl : host + '/privacy';
    anonId = obj(stored()).anonymousId;
    if (typeof anonId !== 'string') anonId = null;
    window.consentric = api;
    if (data.mode === 'wrap') wrapSegment();
    else if (!window.analytics) window.analytics = api;
    addEventListener('pagehide', safe(flush));
    document.addEventListener('visibilitychange', safe(() => document.hidden && flush()));
    if (tcf()) return startTcf();

    const css = h('link', { rel: 'stylesheet', id: 'consentric-css', href: host + '/consent/v1/consent.css' });
    const cssLoaded = new Promise(r => { css.onload = css.onerror = r; setTimeout(r, 3000); });
    document.head.appendChild(css);
    const lang = String(data.lang || document.documentElement.lang || navigator.language).replace(/_/g, '-');
    Promise.all([
      fetch(host + '/v1/purposes' + (/^[\w-]{1,35}$/.test(lang) ? '?lang=' + lang : ''), { credentials: 'omit' })
        .then(r => (r.ok ? r.json() : {}))
        .then(j => Array.isArray(j.purposes) && j.purposes.every(p => isObj(p) && typeof p.id === 'string') && j.purposes)
        .catch(() => null),
      cssLoaded,
      new Promise(r => (document.body ? r() : addEventListener('DOMContentLoaded', r))),
    ]).then(r => decide(r[0])).catch(e => { warn(e); fail(); });
  }

  try { start(); } catch (e) { warn(e); }
})();
