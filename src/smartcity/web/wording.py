"""What the catalogue pages say, in Swedish and English: each text with its translation
beside it, so that neither language falls behind when a page changes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from smartcity.opendata.model import Text

Lang = Literal["sv", "en"]
LANGS: tuple[Lang, ...] = get_args(Lang)
# The language a page is in when the visitor has not asked for one: the city's own.
DEFAULT_LANG: Lang = "sv"

WORDS = {
    "skip": Text(sv="Hoppa till innehållet", en="Skip to content"),
    "catalogue": Text(sv="Öppna data", en="Open data"),
    "catalogue_intro": Text(sv="Data om staden som alla får använda, ladda ner och bygga "
                            "tjänster på.",
                            en="Data about the city that anyone may use, download and "
                            "build services on."),
    "site_navigation": Text(sv="Webbplatsen", en="Site"),
    "other_language": Text(sv="In English", en="På svenska"),
    "search": Text(sv="Sök", en="Search"),
    "search_hint": Text(sv="Sök på titel, beskrivning eller nyckelord, på svenska eller "
                        "engelska.",
                        en="Search titles, descriptions and keywords, in Swedish or "
                        "English."),
    "results": Text(sv="Dataset", en="Datasets"),
    "found": Text(sv="{count} dataset", en="{count} datasets"),
    "found_for": Text(sv="{count} dataset matchar ”{q}”", en="{count} datasets match "
                      "“{q}”"),
    "nothing_found": Text(sv="Inget dataset matchar ”{q}”. Pröva ett annat ord, eller visa "
                          "alla dataset.",
                          en="No dataset matches “{q}”. Try another word, or show all "
                          "datasets."),
    "show_all": Text(sv="Visa alla dataset", en="Show all datasets"),
    "themes": Text(sv="Teman", en="Themes"),
    "licence": Text(sv="Licens", en="Licence"),
    "modified": Text(sv="Senast ändrad", en="Last modified"),
    "issued": Text(sv="Publicerad", en="Published"),
    "keywords": Text(sv="Nyckelord", en="Keywords"),
    "publisher": Text(sv="Utgivare", en="Publisher"),
    "organisation_number": Text(sv="organisationsnummer", en="organisation number"),
    "contact": Text(sv="Kontakt", en="Contact"),
    "frequency": Text(sv="Uppdateras", en="Updated"),
    "spatial": Text(sv="Geografisk täckning", en="Spatial coverage"),
    "bounds": Text(sv="longitud {west}–{east}, latitud {south}–{north}",
                   en="longitude {west} to {east}, latitude {south} to {north}"),
    "temporal": Text(sv="Tidsperiod", en="Temporal coverage"),
    "ongoing": Text(sv="pågående", en="ongoing"),
    "not_stated": Text(sv="Ej angiven", en="Not stated"),
    "hvd": Text(sv="Värdefullt dataset (EU)", en="High-value dataset (EU)"),
    "downloads": Text(sv="Nedladdningar", en="Downloads"),
    "downloaded": Text(sv="{count} gånger", en="{count} times"),
    "distributions": Text(sv="Ladda ner", en="Download"),
    "history_hint": Text(sv="Historiken kan avgränsas med parametrarna from och to "
                         "(ISO 8601), till exempel ?from=2026-01-01T00:00:00Z.",
                         en="The history can be limited with the parameters from and to "
                         "(ISO 8601), for example ?from=2026-01-01T00:00:00Z."),
    "preview": Text(sv="Förhandsvisning", en="Preview"),
    "preview_caption": Text(sv="De första {count} posterna som publiceras just nu",
                            en="The first {count} records published now"),
    "preview_empty": Text(sv="Inga poster publiceras just nu.",
                          en="No records are published right now."),
    "map": Text(sv="Karta", en="Map"),
    "map_label": Text(sv="Karta över platserna i {title}", en="Map of the places in {title}"),
    "map_note": Text(sv="Kartan visar platserna som de publiceras; samma platser finns i "
                     "tabellen och i GeoJSON-filen. Kartan behöver JavaScript.",
                     en="The map shows the places as they are published; the same places "
                     "are in the table and the GeoJSON file. The map needs JavaScript."),
    "map_failed": Text(sv="Kartan kunde inte visas.", en="The map could not be shown."),
    "map_empty": Text(sv="Inga platser publiceras just nu.",
                      en="No places are published right now."),
    "not_found": Text(sv="Sidan finns inte", en="Page not found"),
    "no_dataset": Text(sv="Det finns inget dataset ”{id}” i katalogen.",
                       en="There is no dataset “{id}” in the catalogue."),
    "withheld": Text(sv="Publiceras inte just nu", en="Not published right now"),
    "withheld_dataset": Text(
        sv="Datasetet ”{id}” publiceras inte just nu: som det är definierat skulle det "
        "inte längre följa stadens regler för personuppgifter eller dess data. Kontakta "
        "{contact} ({email}).",
        en="The dataset “{id}” is not published right now: as it is defined, it would no "
        "longer keep to the city's rules for personal data or to its data. Contact "
        "{contact} ({email})."),
    "bad_request": Text(sv="Felaktig begäran", en="Bad request"),
    "bad_lang": Text(sv="Språket ”{lang}” finns inte; välj sv eller en.",
                     en="There is no language “{lang}”; choose sv or en."),
    "long_query": Text(sv="Sökningen är för lång: högst {max} tecken.",
                       en="The search is too long: at most {max} characters."),
    "back": Text(sv="Till katalogen", en="Back to the catalogue"),
}

# EU update frequencies, as the EU vocabulary labels them.
FREQUENCIES = {"CONT": Text(sv="Kontinuerligt", en="Continuous"),
               "UPDATE_CONT": Text(sv="Uppdateras kontinuerligt",
                                   en="Continuously updated"),
               "HOURLY": Text(sv="Varje timme", en="Hourly"),
               "DAILY": Text(sv="Dagligen", en="Daily"),
               "WEEKLY": Text(sv="Varje vecka", en="Weekly"),
               "MONTHLY": Text(sv="Varje månad", en="Monthly"),
               "QUARTERLY": Text(sv="Varje kvartal", en="Quarterly"),
               "ANNUAL": Text(sv="Varje år", en="Annual"),
               "IRREG": Text(sv="Oregelbundet", en="Irregular")}

# High-value dataset categories of Implementing Regulation (EU) 2023/138.
HVD_LABELS = {"geospatial": Text(sv="Geospatiala data", en="Geospatial"),
              "earth-observation-environment": Text(sv="Jordobservation och miljö",
                                                    en="Earth observation and environment"),
              "meteorological": Text(sv="Meteorologiska data", en="Meteorological"),
              "statistics": Text(sv="Statistik", en="Statistics"),
              "companies": Text(sv="Företag och företagsägande",
                                en="Companies and company ownership"),
              "mobility": Text(sv="Mobilitet", en="Mobility")}


@dataclass(frozen=True)
class LicenceText:
    name: str
    url: str  # the licence's own text, in the visitor's language where there is one


LICENCE_TEXTS = {
    "CC0-1.0": {lang: LicenceText("CC0 1.0", "https://creativecommons.org/publicdomain/zero"
                                  f"/1.0/deed.{lang}") for lang in LANGS},
    "CC-BY-4.0": {lang: LicenceText("CC BY 4.0", "https://creativecommons.org/licenses/by"
                                    f"/4.0/deed.{lang}") for lang in LANGS},
}


def words(lang: Lang) -> dict[str, str]:
    """The pages' texts in ``lang``, by name."""
    return {name: getattr(text, lang) for name, text in WORDS.items()}
