/*
 * Languages for the pages: the message catalog of the reader's language (static/i18n/<lang>.json),
 * t(key, params) to look a string up, data-i18n attributes for the static text of a page, the
 * language switch, and the Ethiopian calendar for dates shown to an Amharic reader.
 *
 * The language is localStorage.locale, else the logged-in user's locale, else English. The
 * catalog loads before a page renders: page scripts start with I18n.ready.then(start).
 * Also loaded by node (tests): the calendar part needs no browser.
 */
(function (root) {
  'use strict';

  const LANGUAGES = { en: 'English', am: 'አማርኛ' };
  const MONTHS_AM = ['መስከረም', 'ጥቅምት', 'ኅዳር', 'ታኅሣሥ', 'ጥር', 'የካቲት', 'መጋቢት', 'ሚያዝያ', 'ግንቦት', 'ሰኔ', 'ሐምሌ', 'ነሐሴ', 'ጳጉሜን'];
  const MONTHS_EN = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
  // The Julian Day Number the Ethiopian formulas count from (the same as astegni/i18n/ethiopian.py).
  const EPOCH = 1723856;

  function floorDiv(a, b) {
    return Math.floor(a / b);
  }

  /** The Julian Day Number of a Gregorian calendar day (proleptic; month 1..12). */
  function gregorianToJdn(year, month, day) {
    const a = floorDiv(14 - month, 12);
    const y = year + 4800 - a;
    const m = month + 12 * a - 3;
    return day + floorDiv(153 * m + 2, 5) + 365 * y + floorDiv(y, 4) - floorDiv(y, 100) + floorDiv(y, 400) - 32045;
  }

  /** {year, month (1..13), day} of the Ethiopian calendar for a Gregorian calendar day. */
  function toEthiopian(year, month, day) {
    const offset = gregorianToJdn(year, month, day) - EPOCH;
    const rest = ((offset % 1461) + 1461) % 1461;
    const dayOfYear = (rest % 365) + 365 * floorDiv(rest, 1460);
    return {
      year: 4 * floorDiv(offset, 1461) + floorDiv(rest, 365) - floorDiv(rest, 1460),
      month: floorDiv(dayOfYear, 30) + 1,
      day: (dayOfYear % 30) + 1,
    };
  }

  /** "ኅዳር 20 2019" for 'am', "November 29, 2026" otherwise; from a Gregorian calendar day. */
  function formatDay(year, month, day, lang) {
    if (lang === 'am') {
      const e = toEthiopian(year, month, day);
      return MONTHS_AM[e.month - 1] + ' ' + e.day + ' ' + e.year;
    }
    return MONTHS_EN[month - 1] + ' ' + day + ', ' + year;
  }

  const I18n = {
    LANGUAGES: LANGUAGES,
    toEthiopian: toEthiopian,
    formatDay: formatDay,
    lang: 'en',
    catalog: {},
  };

  /** The reader's date of a Date (its local calendar day) in the current language. */
  I18n.formatDate = function (date, lang) {
    return formatDay(date.getFullYear(), date.getMonth() + 1, date.getDate(), lang || I18n.lang);
  };

  /** A catalog string with {name} placeholders filled; the key itself when it is missing. */
  I18n.t = function (key, params) {
    const text = Object.prototype.hasOwnProperty.call(I18n.catalog, key) ? I18n.catalog[key] : key;
    if (!params) return text;
    return text.replace(/\{(\w+)\}/g, function (whole, name) {
      return params[name] == null ? whole : String(params[name]);
    });
  };

  /** The reader's sentence for an API error: by its code when the catalog has it, else its detail. */
  I18n.errorText = function (code, fallback) {
    const key = 'error.' + code;
    if (code && I18n.lang !== 'en' && Object.prototype.hasOwnProperty.call(I18n.catalog, key)) return I18n.catalog[key];
    return fallback;
  };

  if (typeof module !== 'undefined' && module.exports) {
    module.exports = I18n;
    return;
  }
  root.I18n = I18n;

  function storedUser() {
    try {
      return JSON.parse(localStorage.getItem('user') || 'null');
    } catch (e) {
      return null;
    }
  }

  function chosenLanguage() {
    const stored = localStorage.getItem('locale');
    if (LANGUAGES[stored]) return stored;
    const user = storedUser();
    return user && LANGUAGES[user.locale] ? user.locale : 'en';
  }

  /** Text of elements marked data-i18n="key"; data-i18n-placeholder, -aria-label, -title too. */
  I18n.apply = function (scope) {
    const base = scope || document;
    base.querySelectorAll('[data-i18n]').forEach(function (el) {
      el.textContent = I18n.t(el.getAttribute('data-i18n'));
    });
    ['placeholder', 'aria-label', 'title'].forEach(function (attr) {
      base.querySelectorAll('[data-i18n-' + attr + ']').forEach(function (el) {
        el.setAttribute(attr, I18n.t(el.getAttribute('data-i18n-' + attr)));
      });
    });
  };

  /** Keep the choice on this device and, when logged in, on the account; then render again. */
  I18n.setLanguage = async function (lang) {
    if (!LANGUAGES[lang]) return;
    localStorage.setItem('locale', lang);
    const user = storedUser();
    if (user) {
      user.locale = lang;
      localStorage.setItem('user', JSON.stringify(user));
    }
    if (localStorage.getItem('token') && root.Astegni) {
      try {
        await root.Astegni.request('PUT', '/api/me', { locale: lang });
        localStorage.removeItem('locale_unsaved');
      } catch (e) {
        localStorage.setItem('locale_unsaved', '1');
      }
    } else {
      localStorage.setItem('locale_unsaved', '1');
    }
    location.reload();
  };

  /** <select> of the languages, each named in its own script. */
  I18n.switcher = function () {
    const select = document.createElement('select');
    select.id = 'lang-switch';
    select.setAttribute('aria-label', I18n.t('lang.switch'));
    Object.keys(LANGUAGES).forEach(function (lang) {
      const option = document.createElement('option');
      option.value = lang;
      option.textContent = LANGUAGES[lang];
      option.lang = lang;
      option.selected = lang === I18n.lang;
      select.appendChild(option);
    });
    select.addEventListener('change', function () {
      I18n.setLanguage(select.value);
    });
    return select;
  };

  /** A language chosen while logged out (or not yet saved) becomes the account's, so emails speak it too. */
  function saveOnAccount() {
    const user = storedUser();
    if (!localStorage.getItem('locale_unsaved') || !user || !localStorage.getItem('token') || !root.Astegni) return;
    root.Astegni.request('PUT', '/api/me', { locale: I18n.lang }).then(
      function () {
        user.locale = I18n.lang;
        localStorage.setItem('user', JSON.stringify(user));
        localStorage.removeItem('locale_unsaved');
      },
      function () {
        // Tried again on the next page.
      }
    );
  }

  I18n.lang = chosenLanguage();
  document.documentElement.lang = I18n.lang;
  I18n.ready = fetch('i18n/' + I18n.lang + '.json')
    .then(function (response) {
      return response.ok ? response.json() : {};
    })
    .catch(function () {
      return {};
    })
    .then(function (catalog) {
      I18n.catalog = catalog;
      I18n.apply(document);
      // Pages without the shared header still get the switch, in their footer.
      const footer = document.querySelector('.site-footer');
      if (footer && !document.getElementById('site-header')) footer.appendChild(I18n.switcher());
      saveOnAccount();
      return I18n;
    });
})(this);
