/* calltrack dni.js: dynamic number insertion. Plain ES2017, no dependencies.
 * <script src="{api}/dni.js" data-account="acme-dental" async></script>
 * Options (data attributes): data-consent="EVENT" waits for window event EVENT (or
 * window.calltrackConsent === true) before storing ids or calling the API;
 * data-session-minutes (30). Storage lifetime comes from the account (dni.cookie_days).
 * Never throws into the page; if the API is unreachable nothing changes.
 * Lease lifecycle: heartbeats name the lease (one conditional write on the server); when the
 * page is hidden or closed (visibilitychange / pagehide) the lease is released by sendBeacon
 * (unless another tab renewed it since), and taken again (usually the same number) when the page
 * is shown.
 * Edit this file, then run `make dni-js` to refresh dni.min.js. */
(function () {
  'use strict';
  var w = window, d = document;
  if (w.__calltrackDni) return;
  w.__calltrackDni = 1;
  var s = d.currentScript || d.querySelector('script[data-account][src*="dni.js"]');
  if (!s) return;
  var acct = s.getAttribute('data-account');
  var api = s.src.replace(/\/dni\.js([?#].*)?$/, '');
  var consent = s.getAttribute('data-consent');
  var sessMs = (+s.getAttribute('data-session-minutes') || 30) * 6e4;
  var KEY = 'ct_dni_' + acct;
  var CLICK = ['gclid', 'gbraid', 'wbraid', 'fbclid', 'yclid', 'msclkid'];
  var UTM = ['source', 'medium', 'campaign', 'term', 'content'];
  // separators pages use between digits: spaces, ( ) . - and the dashes Japanese text uses
  // (hyphens U+2010-2015, minus U+2212, full-width hyphen-minus U+FF0D, the long-vowel mark U+30FC,
  // full-width parentheses and full stop)
  var SEP = '[\\s().\\-\\u2010-\\u2015\\u2212\\uff08\\uff09\\uff0d\\uff0e\\u30fc]*';
  // Japanese pages often write numbers in full-width characters (０３－１２３４－５６７８): their
  // digits, + and ( ) are read as the ASCII ones and the leased number is written back as wide.
  var FW = /[\uff08\uff09\uff0b\uff10-\uff19]/g;
  function half(x) { return x.replace(FW, function (c) { return String.fromCharCode(c.charCodeAt(0) - 65248); }); }
  function wc(c) { return String.fromCharCode(c.charCodeAt(0) + 65248); }
  function wide(x, like) {
    return x.replace(/[\d()+]/g, function (c) {
      return like.indexOf(wc(c)) + 1 || /\d/.test(c) && /[\uff10-\uff19]/.test(like) ? wc(c) : c;
    });
  }
  var SKIP = /^(SCRIPT|STYLE|NOSCRIPT|TEXTAREA|INPUT|SELECT|OPTION|TEMPLATE|CODE)$/;
  var st = {}, fm = {}, lease = null, targets = [], last = 0, wall = 0, hb = 600, busy = 0, timer = 0, rel = 0, fails = 0,
    again = 0, pg = rid();  // pg: this page's id (the lease row names the page that took or renewed it last)

  function now() { return Date.now(); }
  // a heartbeat is due when either clock says so: the page's monotonic one (a device clock set
  // back must not stop heartbeats) or the wall clock (the monotonic one may stop while the device
  // sleeps, and the lease runs out meanwhile)
  function mono() { return w.performance ? performance.now() : now(); }
  function since() { return Math.max(mono() - last, now() - wall); }
  function rid() {
    var a = new Uint8Array(16), h = '';
    try { w.crypto.getRandomValues(a); } catch (e) { for (var j = 0; j < 16; j++) a[j] = Math.random() * 256; }
    for (var i = 0; i < 16; i++) h += (a[i] + 256).toString(16).slice(1);
    return h;
  }
  function read() {
    var raw = null, o;
    try { raw = w.localStorage.getItem(KEY); } catch (e) {
      var m = d.cookie.match(new RegExp('(?:^|;\\s*)' + KEY + '=([^;]*)'));
      raw = m && decodeURIComponent(m[1]);
    }
    try { o = JSON.parse(raw) || {}; } catch (e) { o = {}; }
    return !o.x || o.x < now() ? {} : o;
  }
  function load() { st = read(); }
  function save() {
    var days = st.days || 30;
    st.x = st.x || now() + days * 864e5;
    var raw = JSON.stringify(st);
    try { w.localStorage.setItem(KEY, raw); } catch (e) {
      d.cookie = KEY + '=' + encodeURIComponent(raw) + ';path=/;max-age=' + days * 86400 + ';SameSite=Lax';
    }
  }
  function touch() {
    var q = new URLSearchParams(location.search), t = { utm: {} }, any = 0, ref = d.referrer;
    // values cut so a long ad URL still fits the lease request (8 KiB; the server keeps 256)
    // (never inside a character: half an emoji is not JSON the server accepts, a 400 for the visit)
    UTM.forEach(function (k) {
      var v = q.get('utm_' + k);
      if (v) { v = v.slice(0, 256); t.utm[k] = /[\ud800-\udbff]$/.test(v) ? v.slice(0, -1) : v; any = 1; }
    });
    CLICK.forEach(function (k) { var v = q.get(k); if (v) { t[k] = v; any = 1; } });
    try { if (ref && new URL(ref).host === location.host) ref = ''; } catch (e) { ref = ''; }
    if (ref) any = 1;
    t.referrer = ref ? ref.slice(0, 1000) : null;
    t.landing_page = location.href.slice(0, 1500);
    t.at = now();  // when the click id was seen (Meta's fbc creation time)
    var fresh = !st.s || now() - (st.t || 0) > sessMs;
    if (fresh) { st.s = rid(); st.n = null; }
    // A new session's ad click / referral replaces the stored touch; within a session the first wins.
    if (!st.f || (fresh && any)) st.f = t;
    st.v = st.v || rid();
    st.t = now();
  }

  // Number formats come from the lease response (formats: E.164 -> country code, national
  // number, national and international format), so this script has no numbering table.
  function parts(e) {
    var f = fm[e], grp = function (x) { return x.split(/\D+/).filter(Boolean); };
    if (!f) return null;
    var n = f.national_number, nat = f.national.replace(/\D/g, ''), k = nat.length - n.length;
    // tk: the national trunk prefix ("0" in Japan or the UK; none in the US)
    return { c: f.country_code, n: n, nat: nat, tk: k > 0 && nat.slice(k) === n ? nat.slice(0, k) : '',
      g: grp(f.national), ig: grp(f.international).slice(1) };
  }
  function pat(p) {
    var j = function (x) { return x.split('').map(function (c) { return '[' + c + wc(c) + ']'; }).join(SEP); };
    // after the country code, the trunk prefix some pages keep: "+81 (0)3-…", "+81 03-…"
    var tk = p.tk ? '(?:[(\\uff08]?' + j(p.tk) + '[)\\uff09]?' + SEP + ')?' : '';
    return new RegExp('(^|[^\\d+\\uff0b\\uff10-\\uff19])([+\\uff0b]?' + j(p.c) + SEP + tk + j(p.n) + '|[(\\uff08]?' +
      j(p.nat) + ')(?![\\d\\uff10-\\uff19])', 'g');
  }
  // Write the leased number in the style of orig (full-width or not), which shows the number of target t.
  function fmt(orig, t) { return wide(fmt0(half(orig), t), orig).replace('\uff09 ', '\uff09'); }
  function fmt0(orig, t) {
    var p = parts(lease.number), plus = /^\s*\+/.test(orig), od = orig.replace(/\D/g, '');
    if (!p) return orig;
    // the international form keeping the trunk prefix after the country code: "+81 (0)3-…", "+810…"
    var trunk = !!t.tk && od === t.c + t.tk + t.n;
    var intl = plus || trunk || od !== t.nat && od === t.c + t.n, want = intl ? p.c + (trunk ? p.tk : '') + p.n : p.nat;
    var lens = function (x) { return x.map(function (y) { return y.length; }).join(); };
    // digits in place only when the two numbers group alike (03-1234-5678 -> 03-9876-5432); an
    // area code of another length is written in the leased number's own grouping (045-123-4567)
    if (od.length === want.length && lens(intl ? t.ig : t.g) === lens(intl ? p.ig : p.g)) {
      var i = 0;
      return orig.replace(/\d/g, function () { return want[i++]; });
    }
    var rest = intl ? orig.replace(new RegExp('^\\s*\\+?' + t.c), '') : orig, lead = '';
    if (intl) {  // what stands between the country code and the number: " ", " (0)", "0"
      lead = (rest.match(trunk ? new RegExp('^\\D*' + t.tk.split('').join('\\D*') + '[^\\d(]*') : /^[^\d(]*/) || [''])[0];
      rest = rest.slice(lead.length);
      lead = (plus ? '+' : '') + p.c + lead;
    }
    var sm = rest.match(/\d([^\d()]+)\d/), sep = sm ? sm[1] : '', g = intl ? p.ig : p.g;
    // brackets where the page puts them: the area code "(03) 1234-5678", the exchange "03(1234)5678"
    if (/^\(/.test(rest) && g.length > 1) return lead + '(' + g[0] + ') ' + g.slice(1).join(sep || '-');
    if (/\d\D*\(\d+\)\D*\d/.test(rest) && g.length === 3) return lead + g[0] + '(' + g[1] + ')' + g[2];
    return lead + g.join(sep);
  }
  function swapText(root) {
    if (!lease || !targets.length) return;
    var ps = targets.map(parts).filter(Boolean), res = ps.map(pat), tw = d.createTreeWalker(root, 4, null), nodes = [], n;
    while ((n = tw.nextNode())) nodes.push(n);
    nodes.forEach(function (t) {
      for (var e = t.parentNode; e && e !== root.parentNode; e = e.parentNode) {
        if (e.nodeType === 1 && (SKIP.test(e.nodeName) || e.isContentEditable || e.hasAttribute('data-calltrack-ignore'))) return;
      }
      var v = t.nodeValue, o = v;
      res.forEach(function (re, k) { v = v.replace(re, function (m, pre, num) { return pre + fmt(num, ps[k]); }); });
      if (v !== o) t.nodeValue = v;
    });
    var links = root.querySelectorAll ? root.querySelectorAll('a[href^="tel:"]') : [];
    Array.prototype.forEach.call(links, function (a) {
      // the number, then what a dialler does after it (";ext=123", ",,123" pauses) kept as written
      var h = a.getAttribute('href').slice(4), x = h.search(/[;,pw]/i), tail = x < 0 ? '' : h.slice(x), num;
      try { num = half(decodeURIComponent(x < 0 ? h : h.slice(0, x))); } catch (e) { return; }
      var dg = num.replace(/\D/g, '');
      ps.forEach(function (p) {
        var to = 'tel:' + fmt(num, p) + tail;  // set only when it changes (the observer watches href)
        var ours = dg === p.c + p.n || dg === p.nat || dg === p.c + p.tk + p.n;  // "+81(0)3…", "+810…" too
        if (ours && to !== a.getAttribute('href')) a.setAttribute('href', to);
      });
    });
  }
  function swap() {
    timer = 0;
    try { swapText(d.body); } catch (e) { /* never break the page */ }
  }
  // An answer without a number while this session holds a lease (revoked: its address holds its
  // share of the pool; or no pool matches any more): the lease is forgotten, and a page showing
  // its number shows the site's number again.
  function apply(r) {
    var prev = lease && lease.number, site;
    if (r && !r.number && st.l) { st.n = st.l = null; save(); site = prev && (r.replace || [])[0]; }
    if (site) r = { number: site, formats: r.formats };
    else if (!r || !r.number) return;
    targets = (r.replace || []).filter(function (x) { return x !== r.number; });
    if (prev && prev !== r.number) targets.push(prev);
    for (var k in r.formats || {}) fm[k] = r.formats[k];
    lease = r;
    st.n = site ? null : r.number;
    st.l = r.lease_id;
    if (r.cookie_days && r.cookie_days !== st.days) { st.days = r.cookie_days; st.x = 0; }
    save();
    hb = r.heartbeat_seconds || hb;
    swap();
  }
  function ck(n) {
    var m = d.cookie.match(new RegExp('(?:^|;\\s*)' + n + '=([^;]*)'));
    return m ? decodeURIComponent(m[1]) : '';
  }
  // The ad platforms' first-party ids for conversions (read on every lease: gtag / the pixel may set
  // them after dni.js starts): GA4 client id from _ga (GA1.1.<id>.<ts>), session id from
  // _ga_<container> (GS1.1.<session>.… or GS2.1.s<session>$…), Meta's _fbp and _fbc (or an fbc
  // built from the fbclid as Meta documents: fb.1.<ms>.<fbclid>). Each is sent only in the shape
  // (and length) the lease API accepts: the API refuses a request with another, for good.
  function adIds(body, f) {
    var ga = ck('_ga').split('.'), gs = d.cookie.match(/(?:^|;\s*)_ga_[A-Za-z0-9]+=([^;]*)/), m;
    if (ga.length === 4 && /^\d{1,20}$/.test(ga[2]) && /^\d{1,20}$/.test(ga[3])) body.ga_client_id = ga[2] + '.' + ga[3];
    if (gs && (m = decodeURIComponent(gs[1]).match(/^GS1\.\d+\.(\d{1,20})\.|^GS2\.\d+\.s(\d{1,20})(?!\d)/))) {
      body.ga_session_id = m[1] || m[2];
    }
    var fbp = ck('_fbp'), fbc = ck('_fbc') || (f.fbclid ? 'fb.1.' + (f.at || now()) + '.' + f.fbclid : '');
    if (/^fb\.\d\.\d{10,16}\.\d{1,24}$/.test(fbp)) body.fbp = fbp;
    if (/^fb\.\d\.\d{10,16}\.[\w-]{1,490}$/.test(fbc)) body.fbc = fbc;
  }
  function call() {
    if (busy) return;
    busy = 1;
    last = mono();
    wall = now();
    // another tab started a newer session (a new ad click) since this one read the storage: take
    // it, number and lease included, rather than write this tab's older session over it
    var o = read();
    if (o.s && o.s !== st.s && (o.t || 0) > (st.t || 0)) st = o;
    st.t = now();
    var f = st.f || {}, body = {
      account: acct, visitor_id: st.v, session_id: st.s, page_url: location.href.slice(0, 1500),
      landing_page: f.landing_page, referrer: f.referrer, utm: f.utm || {}, number: st.n || undefined,
      lease_id: st.l, page_id: pg
    };
    CLICK.forEach(function (k) { if (f[k]) body[k] = f[k]; });
    try { adIds(body, f); } catch (e) { /* never break the lease */ }
    fetch(api + '/dni/lease', {
      method: 'POST', mode: 'cors', credentials: 'omit',
      headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify(body)
    }).then(function (x) {
      if (x.status === 429 || x.status >= 500) throw x;  // worth another try; other refusals are final
      return x.ok ? x.json() : null;
    }).then(function (r) { fails = 0; apply(r); }, later)
      .then(function () {
        busy = 0;
        // hidden while this request was on its way: its renewal may have landed after the release
        // beacon (or made the beacon's expiry stale), so give the number back once more
        if (d.visibilityState === 'hidden') { rel = 0; release(); }
      });
  }
  // No answer, or 429 / 5xx: the page keeps what it shows and asks again soon (5 s, 10 s, ... at
  // most a minute; a minute after a 429, the limiter's Retry-After), not only at the next heartbeat
  // (minutes away, or never without a lease). One retry pending at a time, six in a row at most.
  function later(x) {
    if (again || fails >= 6) return;
    var wait = (x && x.status === 429 ? 60 : Math.min(60, 5 * Math.pow(2, fails))) * 1e3;
    fails++;
    again = setTimeout(function () { again = 0; if (d.visibilityState !== 'hidden') call(); }, wait);
  }
  function tick() {
    if (d.visibilityState !== 'hidden' && since() >= hb * 1e3) call();
  }
  // Hidden or closed: give the number back at once (the server keeps the session on the row
  // for late calls); shown again: lease at once, naming the old lease.
  function release() {
    var n = w.navigator, u = api + '/dni/lease', b;
    if (rel || !lease || !st.l || !n.sendBeacon) return;  // only a lease this page took
    rel = 1;
    try {
      // the server ends the lease only if this page (page_id) took or renewed it last: another tab
      // (or the next page) of the session that renewed it since still shows the number
      b = JSON.stringify({ account: acct, visitor_id: st.v, session_id: st.s, number: st.n, lease_id: st.l,
        release: true, page_id: pg, expires_at: (lease && lease.expires_at) || undefined });
      // the session's other visible pages (a second window) ask at once: one of them may show it
      // (a storage event each; the key is gone at once, nothing of it stays stored)
      w.localStorage.setItem(KEY + ':r', st.s + ' ' + now());
      w.localStorage.removeItem(KEY + ':r');
    } catch (e) { /* never break the page */ }
    try {
      // a full beacon queue refuses: the next hide or pagehide tries again
      if (b && !n.sendBeacon(u, b)) rel = 0;
    } catch (e) { /* never break the page */ }
  }
  // Shown: lease at once (another tab of the session may have released the shared lease).
  function shown() {
    if (d.visibilityState === 'hidden') release();
    else if (rel || !last || since() > 5e3) { rel = 0; call(); }
  }
  function start() {
    load();
    touch();
    save();
    // a tab opened in the background (or prerendered) leases when it is first shown: leasing now
    // would renew the lease the visible tab shows, and its release on load end that lease
    if (d.visibilityState !== 'hidden') call();
    setInterval(tick, 3e4);
    d.addEventListener('visibilitychange', shown);
    w.addEventListener('pagehide', release);
    // another page of this session released the lease (its window closed or hidden): this one, if
    // visible, takes it again or renews it before the release lands (which it then refuses)
    w.addEventListener('storage', function (e) {
      if (e.key === KEY + ':r' && lease && !(e.newValue || '').indexOf(st.s + ' ') && d.visibilityState !== 'hidden') call();
    });
    new MutationObserver(function () { if (!timer && lease) timer = setTimeout(swap, 50); })
      .observe(d.documentElement, { childList: true, subtree: true, characterData: true, attributes: true,
        attributeFilter: ['href'] });
  }
  function go() {
    // consent given on an earlier page of the visit counts: the stored entry exists only after it
    // (a site withdrawing consent removes ct_dni_<account> with its other cookies)
    if (consent && w.calltrackConsent !== true && !read().x) {
      w.addEventListener(consent, function once() { w.removeEventListener(consent, once); go0(); });
    } else go0();
  }
  function go0() {
    if (d.body) start(); else d.addEventListener('DOMContentLoaded', start);
  }
  try { go(); } catch (e) { /* never break the page */ }
})();
